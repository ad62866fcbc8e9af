# GRPO training: the base model, then one model per (variant, split).


rule prepare_base_model:
    input:
        unpack(base_model_inputs),
    output:
        config="results/models/base/config.json",
        provenance="results/models/base/provenance.json",
    log:
        "logs/models/base/build.log",
    benchmark:
        "benchmarks/models/base/build.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        base=CFG.model_base,
        seed=CFG.seed,
    script:
        "../scripts/prepare_base_model.py"


rule train_grpo:
    input:
        unpack(grpo_inputs),
    output:
        model="results/models/{variant}/{split}/config.json",
        run="results/models/{variant}/{split}/run.json",
        trainer_state="results/models/{variant}/{split}/trainer_state.json",
        summary="results/models/{variant}/{split}/training_summary.json",
        provenance="results/models/{variant}/{split}/provenance.json",
    log:
        "logs/models/{variant}/{split}/train.log",
    benchmark:
        "benchmarks/models/{variant}/{split}/train.tsv"
    conda:
        "../../envs/training.yaml"
    resources:
        gpu=1,
    params:
        grpo=as_params(CFG.grpo),
        variant=variant_settings,
        seed=CFG.seed,
        model_base=CFG.model_base,
        # Outside the outputs: Snakemake keeps them when a job fails, so a rerun resumes.
        checkpoint_dir="results/checkpoints/{variant}/{split}",
    script:
        "../scripts/train_grpo.py"


check_grpo_gpus(rules.train_grpo.rule)
