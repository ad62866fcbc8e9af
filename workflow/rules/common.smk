# Shared by every stage: config validation, typed config, wildcard constraints, input functions.
# What runs while Snakemake parses (this file, the Snakefile, input functions) imports only the
# standard library and Snakemake's own dependencies (yaml, jsonschema), never numpy or pandas: a
# plain Snakemake with --software-deployment-method conda must parse the workflow
# (tests/workflow/test_parse_light.py).

import importlib.util
import os
import re
import sys
from pathlib import Path

from snakemake.utils import min_version

# The checkout's rbio, also where Snakemake runs outside the project's venv (a plain Snakemake
# with per-rule conda environments or containers).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)

from rbio.cluster_profile import check_cluster_profile
from rbio.config import as_params, split_lines
from rbio.config_file import load_config
from rbio.config_validation import validate_config
from rbio.data.folder import HGNC_ALIAS_TABLE, local_table, table_name
from rbio.evaluation.names import BASELINES
from rbio.evaluation.published import published_name
from rbio.reporting.artefacts import (
    FIGURE_FORMATS,
    METRICS_LONG,
    MLFLOW_RUNS,
    TABLE_FORMATS,
    learning_curve_figures,
    paper_figures,
    paper_tables,
)
from rbio.sources import SOURCES
from rbio.training.multinode import gpus_per_node
from rbio.training.vllm_server import check_training_gpus

min_version("9.0")

# Not snakemake.utils.validate: it prints the whole schema and config for one misspelt key.
validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
CFG = load_config(config)


def written_resources():
    """Resources of the profiles and command line as written: scope -> resource -> value."""
    settings = workflow.resource_settings
    scopes = {"default-resources": settings.default_resources or {}}
    scopes.update(settings.overwrite_resources)
    return {
        scope: {name: getattr(value, "raw", value) for name, value in values.items()}
        for scope, values in scopes.items()
    }


# Profile placeholders and a submit host without sbatch fail here, not inside the SLURM plugin;
# a job on a cluster node was submitted from a host that passed this check.
if not workflow.remote_exec:
    check_cluster_profile(
        written_resources(), sys.argv, os.environ, workflow.output_settings.dryrun
    )

LINES = list(CFG.data.cell_lines)
SPLITS = CFG.split_names
VARIANTS = list(CFG.variants)


def _alternatives(values):
    return "|".join(re.escape(value) for value in values)


wildcard_constraints:
    line=_alternatives(LINES),
    split=_alternatives(SPLITS),
    source=_alternatives(SOURCES),
    variant=_alternatives(VARIANTS),
    prompt=_alternatives(["nocot", "cot"]),


# Jobs import the rbio package; in a per-rule conda environment (--software-deployment-method
# conda) it is not installed, so the checkout's src/ goes on the import path of every job.
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

# Where things live changes no result, so it reaches jobs through the environment, not params
# (a finished run that is moved or remounted plans nothing): the data folder (config
# data.local_dir, $RBIO_DATA_DIR wins) and the tracking store and experiment (config mlflow,
# $MLFLOW_TRACKING_URI / $MLFLOW_EXPERIMENT_NAME win). Declared so that cluster jobs receive them.
os.environ.update(
    RBIO_DATA_DIR=str(CFG.data.resolved_dir()),
    MLFLOW_TRACKING_URI=CFG.mlflow.resolved_uri(),
    MLFLOW_EXPERIMENT_NAME=CFG.mlflow.resolved_experiment(),
)


envvars:
    "RBIO_DATA_DIR",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",


# --- data --------------------------------------------------------------------------------------


def data_folder_check(rule_name, source):
    """Input function of an acquire rule that adds no input (where the data folder lies changes
    no result), but with data.origin local first checks that the folder and ``source`` in it
    exist: one line while the DAG is built instead of one failed job per file. A dry run, a job
    on a cluster node and a copy already made (a finished run needs no data folder) check nothing.
    """

    def check(wildcards):
        wildcard_values = dict(wildcards.items())
        copy = getattr(rules, rule_name).output[0].format(**wildcard_values)
        if not (workflow.dryrun or workflow.remote_exec or Path(copy).exists()):
            CFG.data.check_local_files([source.format(**wildcard_values)])
        return []

    return check


def data_targets():
    return [
        "results/data/perturbqa.parquet",
        *expand("results/splits/{split}/leak_report.json", split=SPLITS),
    ]


# --- prompts -----------------------------------------------------------------------------------


def prompt_targets():
    return expand(
        "results/prompts/{source_split}",
        source_split=[f"{source}/{split}" for source, split in CFG.source_splits()],
    )


def prompt_go_settings(wildcards):
    """verifiers.go (aspects, terms per aspect) for sources whose rows carry GO terms, else None."""
    if SOURCES[wildcards.source].uses_go_settings:
        return as_params(CFG.verifiers.go)
    return None


def prompt_mlp_confidence(wildcards):
    """verifiers.mlp.confidence for sources whose answer confidences come from the MLP verifier."""
    if SOURCES[wildcards.source].uses_mlp_confidence:
        return CFG.verifiers.mlp.confidence
    return None


def verifier_inputs(wildcards):
    """The verifier outputs a source's prompts are built from, as rbio.sources declares them."""
    outputs = SOURCES[wildcards.source].verifier_outputs
    return {name: path.format(split=wildcards.split) for name, path in outputs.items()}


# --- verifiers ---------------------------------------------------------------------------------


def verifier_targets():
    return [
        "results/verifiers/go/index.parquet",
        f"results/verifiers/embeddings/{CFG.verifiers.embeddings.kind}.safetensors",
        *expand("results/verifiers/mlp/{split}/metrics.json", split=SPLITS),
        "results/verifiers/tf_pmi/questions.parquet",
    ]


def embedding_inputs(wildcards):
    """go_svd is built from the propagated GO annotations; esm2 from a given file, if any."""
    if wildcards.emb == "go_svd":
        return {"propagated": "results/verifiers/go/propagated.parquet"}
    if wildcards.emb == "esm2" and CFG.verifiers.embeddings.esm2_path:
        return {"esm2": CFG.verifiers.embeddings.esm2_path}
    return {}


def embedding_settings(wildcards):
    """The settings of one embedding kind (go_svd: dimension and seed; the others: none)."""
    if wildcards.emb == "go_svd":
        return {"dim": CFG.verifiers.embeddings.dim, "seed": CFG.seed}
    return {}


def tf_pmi_inputs(wildcards):
    """The expression backend's h5ad, when one is configured (else scanpy's bundled one)."""
    h5ad = CFG.verifiers.tf_pmi.h5ad
    return {"h5ad": h5ad} if h5ad else {}


def mlp_verifier_settings():
    """verifiers.mlp without confidence (it shapes the prompts built from the scores, not them)."""
    return {k: v for k, v in as_params(CFG.verifiers.mlp).items() if k != "confidence"}


def tf_pmi_settings():
    """verifiers.tf_pmi without the h5ad path (an input: its content counts, not its place)."""
    return {k: v for k, v in as_params(CFG.verifiers.tf_pmi).items() if k != "h5ad"}


# --- grpo --------------------------------------------------------------------------------------


def base_model_inputs(wildcards):
    """The tiny model's tokenizer is trained on the PerturbQA gene symbols; hub models need none."""
    if CFG.model_base == "tiny":
        return {"perturbqa": "results/data/perturbqa.parquet"}
    return {}


def variant_settings(wildcards):
    return as_params(CFG.variants[wildcards.variant])


def grpo_targets():
    """The trained model of every (variant, split) in the config."""
    return [
        f"results/models/{variant}/{split}/config.json"
        for variant, split in CFG.variant_splits()
    ]


_MACHINE_CHECKED = []


def check_local_machine():
    """Local runs fail while the DAG is built when grpo needs hardware this machine lacks
    (bf16/vLLM without CUDA); cluster and dry runs are checked when the job starts."""
    if workflow.local_exec and not workflow.dryrun and not _MACHINE_CHECKED:
        # A Snakemake without torch (jobs in conda envs) cannot tell; the job checks at start.
        if importlib.util.find_spec("torch") is None:
            return
        from rbio.training.checks import check_machine

        check_machine(CFG.grpo)
        _MACHINE_CHECKED.append(True)


def check_grpo_gpus(rule):
    """Fail while the workflow parses, not in a GPU job after its time in the queue, when
    train_grpo's GPUs (its resources after the profile's set-resources: gpu, or gres gpu:G per
    node with nodes N) cannot hold grpo's vLLM layout (server mode on one GPU, a tensor-parallel
    size that does not divide them) or split grpo.global_prompts_per_step evenly. A resource given
    as an expression (of attempt, say) is checked when the job starts."""
    resources = {
        name: getattr(value, "raw", value)
        for name, value in rule.resources.items()
        if name in ("gpu", "gres", "nodes")
    }
    check_training_gpus(CFG.grpo, resources)
    try:
        per_node, nodes = gpus_per_node(resources), int(resources.get("nodes") or 1)
    except (TypeError, ValueError):
        return
    # vLLM server mode keeps its GPUs out of training (one node only, refused otherwise).
    training = max(1, per_node - CFG.grpo.vllm_server_gpus) * nodes
    CFG.grpo.gradient_accumulation_steps(processes=training)


def variant_prompts(wildcards):
    """One prompt dataset per source of the variant, for its split (GRPO and SFT train on them)."""
    return {
        f"prompts_{source}": f"results/prompts/{source}/{wildcards.split}"
        for source in CFG.variants[wildcards.variant].sources
    }


def grpo_inputs(wildcards):
    """The model GRPO starts from (its SFT model where sft.cold_starts it, else the base model), the
    variant's prompt datasets (one per source) and the split's validation rows."""
    check_local_machine()
    if CFG.sft.cold_starts(wildcards.variant):
        base = f"results/sft/{wildcards.variant}/{wildcards.split}/config.json"
    else:
        base = "results/models/base/config.json"
    return {"base": base, **variant_prompts(wildcards), **validation_rows(wildcards)}


def sft_inputs(wildcards):
    """The base model, the variant's prompt datasets (the SFT set is its GRPO training set) and
    the split's held-out validation rows."""
    return {
        "base": "results/models/base/config.json",
        **variant_prompts(wildcards),
        **validation_rows(wildcards),
    }


def validation_rows(wildcards):
    """The split's training-line rows held out of training, answered during training."""
    return {"validation": f"results/splits/{wildcards.split}/validation.parquet"}


# --- evaluate ----------------------------------------------------------------------------------


PUBLISHED = [published_name(name) for name in CFG.evaluation.published]
MODELS = [*VARIANTS, "base", *PUBLISHED]


def evaluated_splits():
    """Splits any variant is trained on: the base model, baselines and checkpoints use them too."""
    return sorted({split for _, split in CFG.variant_splits()})


def evaluation_entries():
    """(model, kind, split) of every evaluation the config asks for."""
    entries = [(variant, "trained", split) for variant, split in CFG.variant_splits()]
    for split in evaluated_splits():
        if CFG.evaluation.base_model:
            entries.append(("base", "base", split))
        entries += [(name, "published", split) for name in PUBLISHED]
    return entries


def metrics_entries():
    """Every metrics file with what it describes (tables and figures are built from these)."""
    models = [
        dict(model=model, kind=kind, split=split, prompt=prompt,
             path=f"results/eval/{model}/{split}/{prompt}/metrics.parquet")
        for model, kind, split in evaluation_entries()
        for prompt in CFG.evaluation.prompt_styles
    ]  # fmt: skip
    baselines = [
        dict(model=name, kind="baseline", split=split, prompt="",
             path=f"results/eval/baselines/{split}/{name}/metrics.parquet")
        for split in evaluated_splits()
        for name in BASELINES
    ]  # fmt: skip
    return models + baselines


def evaluation_targets():
    return [entry["path"] for entry in metrics_entries()]


def provenance_records():
    """The provenance.json of every trained model and every evaluation (baselines included)."""
    models = [
        f"results/models/{variant}/{split}/provenance.json"
        for variant, split in CFG.variant_splits()
    ]
    evaluations = [
        str(Path(entry["path"]).parent / "provenance.json")
        for entry in metrics_entries()
        if entry["kind"] != "baseline"
    ]
    baselines = [
        f"results/eval/baselines/{split}/provenance.json"
        for split in evaluated_splits()
    ]
    return models + evaluations + baselines


def evaluate_model_inputs(wildcards):
    """The split's test rows and the model folder (published: base model + downloaded shards)."""
    inputs = {"test": f"results/splits/{wildcards.split}/test.parquet"}
    if wildcards.model in PUBLISHED:
        inputs["model"] = "results/models/base/config.json"
        inputs["checkpoint"] = f"results/published/{wildcards.model}/manifest.json"
    elif wildcards.model == "base":
        inputs["model"] = "results/models/base/config.json"
        inputs["model_provenance"] = "results/models/base/provenance.json"
    else:
        folder = f"results/models/{wildcards.model}/{wildcards.split}"
        inputs["model"] = f"{folder}/config.json"
        # Identifies the weights (the config alone does not), unlike run.json's random run id.
        inputs["model_provenance"] = f"{folder}/provenance.json"
    return inputs


def generation_settings():
    """The evaluation settings that change a result (decoding and its seed)."""
    e = CFG.evaluation
    return dict(
        greedy=e.greedy,
        num_samples=e.num_samples,
        temperature=e.temperature,
        max_new_tokens=e.max_new_tokens,
        batch_size=e.batch_size,
        seed=CFG.seed,
        likelihood_scoring=e.likelihood_scoring,
    )


def model_kind(wildcards):
    if wildcards.model in PUBLISHED:
        return "published"
    return "base" if wildcards.model == "base" else "trained"


# --- paper -------------------------------------------------------------------------------------


def paper_table_files():
    """Every table file the paper_tables rule writes (rbio.reporting.artefacts)."""
    tables = paper_tables(evaluated_splits(), CFG.evaluation.prompt_styles)
    return [f"results/tables/{name}" for t in tables for name in t.files(TABLE_FORMATS)]


def paper_table_outputs():
    """paper_table_files(), the HTML pages marked for the report (shown inline there) with the
    caption of their kind (CSV, Markdown and LaTeX are for reading and the paper)."""
    outputs = []
    for table in paper_tables(evaluated_splits(), CFG.evaluation.prompt_styles):
        for name in table.files(TABLE_FORMATS):
            path = f"results/tables/{name}"
            if name.endswith(".html"):
                path = report(
                    path,
                    category="Tables",
                    subcategory=table.group,
                    caption=f"../report/{table.caption}",
                )
            outputs.append(path)
    return outputs


def figure_outputs(figures, report_marks=True):
    """The files of ``figures`` (rbio.reporting.artefacts); with ``report_marks`` the PNGs marked
    for the report with the caption of their kind (the PDFs are for the paper)."""
    outputs = []
    for figure in figures:
        for name in figure.files(FIGURE_FORMATS):
            path = f"results/figures/{name}"
            if report_marks and name.endswith(".png"):
                caption = f"../report/{figure.caption}"
                path = report(
                    path, category="Figures", subcategory=figure.group, caption=caption
                )
            outputs.append(path)
    return outputs


def paper_figure_files():
    """Every figure file the paper_figures rule writes."""
    return figure_outputs(
        paper_figures(evaluated_splits(), CFG.evaluation.prompt_styles),
        report_marks=False,
    )


def paper_figure_outputs():
    """paper_figure_files(), marked for the report."""
    return figure_outputs(
        paper_figures(evaluated_splits(), CFG.evaluation.prompt_styles)
    )


def learning_curve_entries():
    """Per trained (variant, split): the training summaries its learning curves are drawn from
    (GRPO's; SFT's where it cold-starts) and its run.json (where they are logged)."""
    return [
        dict(variant=variant, split=split,
             grpo=f"results/models/{variant}/{split}/training_summary.json",
             run=f"results/models/{variant}/{split}/run.json",
             sft=f"results/sft/{variant}/{split}/training_summary.json"
             if CFG.sft.cold_starts(variant) else None)
        for variant, split in CFG.variant_splits()
    ]  # fmt: skip


def learning_curve_inputs():
    """Every file the curves are drawn from or logged by (a retrained model redraws them)."""
    return [
        path
        for e in learning_curve_entries()
        for path in (e["grpo"], e["sft"], e["run"])
        if path
    ]


def learning_curve_outputs(report_marks=True):
    """Every learning-curve figure file (marked for the report unless ``report_marks`` is off)."""
    return figure_outputs(learning_curve_figures(CFG.variant_splits()), report_marks)


def paper_targets():
    return [
        "results/report/run_summary.html",
        *paper_table_files(),
        *paper_figure_files(),
        *learning_curve_outputs(report_marks=False),
        f"results/tables/{METRICS_LONG}",
        f"results/tables/{MLFLOW_RUNS}",
    ]
