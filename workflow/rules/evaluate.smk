# Evaluation: every model (trained variants, the base model, released rbio1 checkpoints) on the
# test rows of its splits with each system prompt, and the baselines on the same rows.


rule evaluate_model:
    input:
        unpack(evaluate_model_inputs),
    output:
        predictions="results/eval/{model}/{split}/{prompt}/predictions.parquet",
        metrics="results/eval/{model}/{split}/{prompt}/metrics.parquet",
        summary="results/eval/{model}/{split}/{prompt}/evaluation.json",
        provenance="results/eval/{model}/{split}/{prompt}/provenance.json",
    log:
        "logs/eval/{model}/{split}/{prompt}.log",
    benchmark:
        "benchmarks/eval/{model}/{split}/{prompt}.tsv"
    wildcard_constraints:
        model=_alternatives(MODELS),
    conda:
        "../../envs/evaluation.yaml"
    resources:
        gpu=1,
    params:
        kind=model_kind,
        generation=generation_settings(),
        bootstrap=CFG.evaluation.bootstrap,
        engine=CFG.evaluation.engine,
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
    conda:
        "../../envs/evaluation.yaml"
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
        provenance="results/eval/baselines/{split}/provenance.json",
    log:
        "logs/eval/baselines/{split}.log",
    benchmark:
        "benchmarks/eval/baselines/{split}.tsv"
    conda:
        "../../envs/evaluation.yaml"
    params:
        test_lines_are_new=lambda wildcards: not (
            set(split_lines(wildcards.split, LINES)[0])
            & set(split_lines(wildcards.split, LINES)[1])
        ),
        bootstrap=CFG.evaluation.bootstrap,
        seed=CFG.seed,
    script:
        "../scripts/evaluate_baselines.py"
