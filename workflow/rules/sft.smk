# Optional SFT before GRPO (config sft.enabled, sft.variants): one model per (variant, split), the
# model that train_grpo then starts from. Off, no rule asks for its output and the DAG is the paper's.


rule train_sft:
    input:
        unpack(sft_inputs),
    output:
        model="results/sft/{variant}/{split}/config.json",
        summary="results/sft/{variant}/{split}/training_summary.json",
        provenance="results/sft/{variant}/{split}/provenance.json",
    log:
        "logs/sft/{variant}/{split}/train.log",
    benchmark:
        "benchmarks/sft/{variant}/{split}/train.tsv"
    # Ahead of other ready jobs: GRPO of the variant waits for it, and it is the longest job of
    # a CPU run (1,000 steps on the tiny panel).
    priority: 10
    conda:
        "../../envs/training.yaml"
    resources:
        gpu=1,
    params:
        sft=as_params(CFG.sft),
        variant=variant_settings,
        seed=CFG.seed,
        # Held-out answers are as long as the completions GRPO then trains on.
        heldout_max_new_tokens=CFG.grpo["max_completion_length"],
    script:
        "../scripts/train_sft.py"
