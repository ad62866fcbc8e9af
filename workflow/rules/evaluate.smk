# Evaluation: every model (trained variants, the base model, released rbio1 checkpoints) on the
# test rows of its splits with each system prompt, and the baselines on the same rows.

from rbio.config import split_lines
from rbio.evaluation.baselines import BASELINES
from rbio.evaluation.published import published_name

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


def evaluate_model_inputs(wildcards):
    """The split's test rows and the model folder (published: base model + downloaded shards)."""
    inputs = {"test": f"results/splits/{wildcards.split}/test.parquet"}
    if wildcards.model in PUBLISHED:
        inputs["model"] = "results/models/base/config.json"
        inputs["checkpoint"] = f"results/published/{wildcards.model}/manifest.json"
    elif wildcards.model == "base":
        inputs["model"] = "results/models/base/config.json"
    else:
        inputs["model"] = (
            f"results/models/{wildcards.model}/{wildcards.split}/config.json"
        )
        inputs["run"] = f"results/models/{wildcards.model}/{wildcards.split}/run.json"
    return inputs


def model_kind(wildcards):
    if wildcards.model in PUBLISHED:
        return "published"
    return "base" if wildcards.model == "base" else "trained"


rule evaluate_model:
    input:
        unpack(evaluate_model_inputs),
    output:
        predictions="results/eval/{model}/{split}/{prompt}/predictions.parquet",
        metrics="results/eval/{model}/{split}/{prompt}/metrics.parquet",
        summary="results/eval/{model}/{split}/{prompt}/evaluation.json",
    log:
        "logs/eval/{model}/{split}/{prompt}.log",
    benchmark:
        "benchmarks/eval/{model}/{split}/{prompt}.tsv"
    wildcard_constraints:
        model=_alternatives(MODELS),
    resources:
        gpu=1,
    params:
        kind=model_kind,
        config_hash=CFG.hash(),
    script:
        "../scripts/evaluate_model.py"


# Network access: runs where the workflow was started, not on compute nodes.
localrules:
    download_published_checkpoint,


rule download_published_checkpoint:
    output:
        manifest="results/published/{checkpoint}/manifest.json",
    log:
        "logs/published/{checkpoint}.log",
    wildcard_constraints:
        checkpoint=_alternatives(PUBLISHED) if PUBLISHED else "rbio1-[A-Za-z+-]+",
    script:
        "../scripts/download_published_checkpoint.py"


rule evaluate_baselines:
    input:
        train="results/splits/{split}/train.parquet",
        test="results/splits/{split}/test.parquet",
        mlp_scores="results/verifiers/mlp/{split}/scores.parquet",
        tf_pmi="results/verifiers/tf_pmi/pmi.parquet",
        go_index="results/verifiers/go/index.parquet",
    output:
        metrics=expand(
            "results/eval/baselines/{{split}}/{baseline}/metrics.parquet",
            baseline=BASELINES,
        ),
        scores="results/eval/baselines/{split}/scores.parquet",
        thresholds="results/eval/baselines/{split}/thresholds.json",
    log:
        "logs/eval/baselines/{split}.log",
    benchmark:
        "benchmarks/eval/baselines/{split}.tsv"
    params:
        test_lines_are_new=lambda wildcards: not (
            set(split_lines(wildcards.split, LINES)[0])
            & set(split_lines(wildcards.split, LINES)[1])
        ),
        config_hash=CFG.hash(),
    script:
        "../scripts/evaluate_baselines.py"
