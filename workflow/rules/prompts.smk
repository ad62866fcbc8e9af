# Prompt datasets: one Hugging Face dataset of training prompts per (source, split).


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
    conda:
        "../../envs/data.yaml"
    params:
        prompts=as_params(CFG.prompts),
        seed=CFG.seed,
        go=prompt_go_settings,
        mlp_confidence=prompt_mlp_confidence,
    script:
        "../scripts/build_prompts.py"
