# GRPO training: the base model, then one model per (variant, split).

import os


def base_model_inputs(wildcards):
    """The tiny model's tokenizer is trained on the PerturbQA gene symbols; hub models need none."""
    if CFG.model_base == "tiny":
        return {"perturbqa": "results/data/perturbqa.parquet"}
    return {}


rule prepare_base_model:
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
        "../scripts/prepare_base_model.py"


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
        from rbio.training.checks import check_machine

        check_machine(CFG.grpo)
        _MACHINE_CHECKED.append(True)


def grpo_inputs(wildcards):
    """The base model and one prompt dataset per source of the variant."""
    check_local_machine()
    sources = CFG.variants[wildcards.variant].sources
    return {
        "base": "results/models/base/config.json",
        **{
            f"prompts_{source}": f"results/prompts/{source}/{wildcards.split}"
            for source in sources
        },
    }


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
    resources:
        gpu=1,
    params:
        # Outside the outputs: Snakemake keeps them when a job fails, so a rerun resumes.
        checkpoint_dir="results/checkpoints/{variant}/{split}",
        # Relative to the workflow root (the repository), wherever the working directory is.
        accelerate_config=os.path.join(workflow.basedir, CFG.grpo.deepspeed_config),
    script:
        "../scripts/train_grpo.py"
