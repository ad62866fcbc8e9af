# Paper outputs: tables and figures from every metrics file, and the MLflow run comparison.
# Wrapped in report(): `snakemake --report report.html` collects them with their captions.


localrules:
    run_summary,
    paper_tables,
    paper_figures,
    learning_curves,
    compare_runs,


rule run_summary:
    output:
        report(
            "results/report/run_summary.html",
            category="Run",
            caption="../report/run_summary.rst",
        ),
    log:
        "logs/paper/run_summary.log",
    conda:
        "../../envs/evaluation.yaml"
    params:
        # The whole resolved config: its digest is on the page, so any change reruns this job.
        config=config,
        # Relative to the repository: no machine paths on the page.
        configfiles=[
            os.path.relpath(path, workflow.basedir) for path in workflow.configfiles
        ],
    script:
        "../scripts/run_summary.py"


rule paper_tables:
    input:
        evaluation_targets(),
    output:
        long=report(
            f"results/tables/{METRICS_LONG}",
            category="Tables",
            caption="../report/metrics_long.rst",
        ),
        tables=paper_table_outputs(),
        provenance="results/tables/provenance.json",
    log:
        "logs/paper/tables.log",
    conda:
        "../../envs/evaluation.yaml"
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
        paper_figure_outputs(),
        provenance="results/figures/provenance.json",
    log:
        "logs/paper/figures.log",
    conda:
        "../../envs/evaluation.yaml"
    params:
        entries=metrics_entries(),
        splits=evaluated_splits(),
        prompts=list(CFG.evaluation.prompt_styles),
        variants=VARIANTS,
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    script:
        "../scripts/paper_figures.py"


rule learning_curves:
    input:
        # Read through params.entries; declared here so a retrained model redraws its curves.
        learning_curve_inputs(),
    output:
        learning_curve_outputs(),
        provenance="results/figures/learning_curves.provenance.json",
    log:
        "logs/paper/learning_curves.log",
    conda:
        "../../envs/evaluation.yaml"
    params:
        entries=learning_curve_entries(),
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    script:
        "../scripts/learning_curves.py"


rule compare_runs:
    input:
        # The records of every model and evaluation: their runs are the ones compared.
        provenance_records(),
    output:
        report(
            f"results/tables/{MLFLOW_RUNS}",
            category="Tables",
            caption="../report/mlflow_runs.rst",
        ),
    log:
        "logs/paper/compare_runs.log",
    conda:
        "../../envs/evaluation.yaml"
    script:
        "../scripts/compare_runs.py"
