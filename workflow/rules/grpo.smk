# GRPO training: the base model, then one model per (variant, split).


def base_model_inputs(wildcards):
    """The tiny model's tokenizer is trained on the PerturbQA gene symbols; hub models need none."""
    if CFG.model_base == "tiny":
        return {"perturbqa": "results/data/perturbqa.parquet"}
    return {}


rule build_tiny_model:
    input:
        unpack(base_model_inputs),
    output:
        config="results/models/base/config.json",
    log:
        "logs/models/base/build.log",
    benchmark:
        "benchmarks/models/base/build.tsv"
    params:
        base=CFG.model_base,
        seed=CFG.seed,
    script:
        "../scripts/build_tiny_model.py"
