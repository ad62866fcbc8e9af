# GRPO training: the base model, then one model per (variant, split).


rule prepare_base_model:
    input:
        unpack(base_model_inputs),
    output:
        config="results/models/base/config.json",
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
    log:
        "logs/models/{variant}/{split}/train.log",
    benchmark:
        "benchmarks/models/{variant}/{split}/train.tsv"
    conda:
        "../../envs/training.yaml"
    resources:
        gpu=1,
    params:
        # Outside the outputs: Snakemake keeps them when a job fails, so a rerun resumes.
        checkpoint_dir="results/checkpoints/{variant}/{split}",
        # Relative to the workflow root (the repository), wherever the working directory is.
        accelerate_config=os.path.join(workflow.basedir, CFG.grpo.deepspeed_config),
    script:
        "../scripts/train_grpo.py"
