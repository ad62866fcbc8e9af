# rbio pipeline: PerturbQA -> splits -> verifiers -> prompt datasets -> GRPO -> evaluation -> paper.
# This file only declares; the logic lives in the rbio package (src/rbio), the stages in
# workflow/rules/. Paper configuration: config.yaml; tiny CPU preset: --configfile config/tiny.yaml.


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/verifiers.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/grpo.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/paper.smk"


rule all:
    input:
        data_targets(),
        prompt_targets(),
        grpo_targets(),
        paper_targets(),


rule data:
    input:
        data_targets(),


rule verifiers:
    input:
        verifier_targets(),


rule prompts:
    input:
        prompt_targets(),


rule all_variants:
    input:
        grpo_targets(),
        evaluation_targets(),


rule paper:
    input:
        paper_targets(),
