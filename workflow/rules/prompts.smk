# Prompt datasets: one Hugging Face dataset of training prompts per (source, split).


def prompt_targets():
    return expand(
        "results/prompts/{source_split}",
        source_split=[f"{source}/{split}" for source, split in CFG.source_splits()],
    )


def verifier_inputs(wildcards):
    """The verifier output a source's prompts are scored by (EXP needs none)."""
    source = wildcards.source
    if source == "mlp":
        return {"mlp_scores": f"results/verifiers/mlp/{wildcards.split}/scores.parquet"}
    if source == "tf":
        return {"tf_questions": "results/verifiers/tf_pmi/questions.parquet"}
    if source.startswith("go"):
        return {"go_index": "results/verifiers/go/index.parquet"}
    return {}


rule build_prompts:
    input:
        unpack(verifier_inputs),
        train="results/splits/{split}/train.parquet",
    output:
        directory("results/prompts/{source}/{split}"),
    log:
        "logs/prompts/{source}/{split}.log",
    benchmark:
        "benchmarks/prompts/{source}/{split}.tsv"
    script:
        "../scripts/build_prompts.py"
