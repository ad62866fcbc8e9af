# Paper outputs: tables and figures from every metrics file, and the MLflow run comparison.
# Wrapped in report(): `snakemake --report report.html` collects them with their captions.

from pathlib import Path


def paper_table_files():
    stems = [
        f"{split}_{prompt}"
        for split in evaluated_splits()
        for prompt in CFG.evaluation.prompt_styles
    ]
    stems += [f"loco_mean_{prompt}" for prompt in CFG.evaluation.prompt_styles]
    stems.append("reported")
    return [
        f"results/tables/{stem}.{ext}" for stem in stems for ext in ("csv", "md", "tex")
    ]


def paper_figure_files():
    stems = [
        f"metrics_{split}_{prompt}"
        for split in evaluated_splits()
        for prompt in CFG.evaluation.prompt_styles
    ]
    for prompt in CFG.evaluation.prompt_styles:
        stems += [f"loco_per_line_{prompt}", f"composition_ladder_{prompt}"]
    stems.append("cot_vs_nocot")
    return [f"results/figures/{stem}.{ext}" for stem in stems for ext in ("png", "pdf")]


def paper_targets():
    return [
        *paper_table_files(),
        *paper_figure_files(),
        "results/tables/metrics_long.csv",
        "results/tables/mlflow_runs.csv",
    ]


def _figure_report(path):
    """PNGs go into the report (PDFs are for the paper)."""
    if not path.endswith(".png"):
        return path
    name = Path(path).stem
    caption = next(
        (
            f"../report/{stem}.rst"
            for stem in (
                "metrics",
                "loco_per_line",
                "composition_ladder",
                "cot_vs_nocot",
            )
            if name.startswith(stem)
        ),
    )
    return report(
        path, category="Figures", subcategory=name.rsplit("_", 1)[0], caption=caption
    )


localrules:
    paper_tables,
    paper_figures,
    compare_runs,


rule paper_tables:
    input:
        evaluation_targets(),
    output:
        long=report(
            "results/tables/metrics_long.csv",
            category="Tables",
            caption="../report/metrics_long.rst",
        ),
        tables=[
            (
                report(path, category="Tables", caption="../report/tables.rst")
                if path.endswith(".md")
                else path
            )
            for path in paper_table_files()
        ],
    log:
        "logs/paper/tables.log",
    params:
        entries=metrics_entries(),
        splits=evaluated_splits(),
        prompts=list(CFG.evaluation.prompt_styles),
        variants=VARIANTS,
    script:
        "../scripts/paper_tables.py"


rule paper_figures:
    input:
        evaluation_targets(),
    output:
        [_figure_report(path) for path in paper_figure_files()],
    log:
        "logs/paper/figures.log",
    params:
        entries=metrics_entries(),
        splits=evaluated_splits(),
        prompts=list(CFG.evaluation.prompt_styles),
        variants=VARIANTS,
        out_dir="results/figures",
    script:
        "../scripts/paper_figures.py"


rule compare_runs:
    input:
        # After every evaluation has logged its run.
        evaluation_targets(),
    output:
        report(
            "results/tables/mlflow_runs.csv",
            category="Tables",
            caption="../report/mlflow_runs.rst",
        ),
    log:
        "logs/paper/compare_runs.log",
    params:
        experiment=CFG.mlflow.experiment,
        config_hash=CFG.hash(),
    script:
        "../scripts/compare_runs.py"
