# rbio pipeline: PerturbQA -> splits -> verifiers -> prompt datasets -> GRPO -> evaluation -> paper.
# This file only declares; the logic lives in the rbio package (src/rbio), the stages in
# workflow/rules/. Paper configuration: config.yaml; tiny CPU preset: --configfile config/tiny.yaml.


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# Every job's image with --software-deployment-method apptainer: the lock's packages. No image
# is published; build it with `apptainer build containers/rbio.sif containers/rbio.def` (the
# definition's header says how to run it). Without that flag it is ignored: jobs use .venv or
# envs/*.yaml.
# Relative to the working directory (the checkout's root), not absolute: the path is recorded
# with every output, and a finished run that is moved must plan nothing.
container: "containers/rbio.sif"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/verifiers.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/grpo.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/paper.smk"


rule all:
    """Everything the config declares."""
    input:
        data_targets(),
        prompt_targets(),
        grpo_targets(),
        paper_targets(),


rule data:
    """The tidy PerturbQA table and every split."""
    input:
        data_targets(),


rule verifiers:
    """The GO index, the gene embedding, the MLP verifier per split, the TF PMI questions."""
    input:
        verifier_targets(),


rule prompts:
    """The prompt set of every (source, split) some variant trains on."""
    input:
        prompt_targets(),


rule all_variants:
    """Every variant trained on its splits, and every evaluation on those splits: the trained
    variants, the base model, the released checkpoints (evaluation.published) and the baselines.
    """
    input:
        grpo_targets(),
        evaluation_targets(),


rule paper:
    """Tables, figures and the MLflow run table from every evaluation."""
    input:
        paper_targets(),


onsuccess:
    # Where the results are, each model's unparseable rate and what to open next
    # (rbio.reporting.run_summary); a summary that fails must not fail a finished run.
    try:
        from rbio.reporting.run_summary import run_summary

        print(
            run_summary(
                "results",
                tracking_uri=CFG.mlflow.resolved_uri(),
                configfiles=workflow.overwrite_configfiles or (),
            )
        )
    except Exception as error:
        print(f"rbio: no run summary ({error})")
