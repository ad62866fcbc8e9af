"""The paper configuration trains as TRL 0.16 did (rbio1's version), field by field.

The facts below are TRL 0.16.0's (``trl/trainer/grpo_config.py`` defaults, ``grpo_trainer.py``
behaviour) and transformers 4.51's ``TrainingArguments`` defaults; docs/trl-defaults.md gives
the evidence. Each installed ``GRPOConfig`` field is classified, so a TRL upgrade that adds a
field or moves a default fails here until someone decides what it means for the paper's runs.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import trl
from transformers import TrainingArguments

from rbio.config_file import read_config
from tests.helpers import REPO

DOC = REPO / "docs" / "trl-defaults.md"

# What TRL 0.16 ran with, for every field that decides what a GRPO step computes. Fields new since
# 0.16 carry the value that reproduces 0.16's behaviour (e.g. no KL importance factor).
TRL_016 = {
    # TRL 0.16's own GRPOConfig defaults.
    "remove_unused_columns": False,
    "num_generations": 8,
    "max_completion_length": 256,
    "ds3_gather_for_generation": True,
    "temperature": 0.9,
    "top_p": 1.0,
    "top_k": 50,
    "min_p": None,
    "repetition_penalty": 1.0,
    "cache_implementation": None,
    "use_vllm": False,
    "learning_rate": 1e-6,
    "beta": 0.04,
    "num_iterations": 1,
    "epsilon": 0.2,
    "epsilon_high": None,
    "reward_weights": None,
    "scale_rewards": "group",  # 0.16's True; 1.16 reads True as "group"
    "sync_ref_model": False,
    "ref_model_mixup_alpha": 0.6,
    "ref_model_sync_steps": 512,
    "log_completions": False,
    # Behaviours that became options after 0.16, at the value that is 0.16's behaviour.
    "loss_type": "bnpo",
    "use_bias_correction_kl": False,
    "vllm_importance_sampling_correction": False,
    "importance_sampling_level": "token",
    "multi_objective_aggregation": "sum_then_normalize",
    "mask_truncated_completions": False,
    "top_entropy_quantile": 1.0,
    "entropy_coef": 0.0,
    "use_adaptive_entropy": False,
    "off_policy_mask_threshold": None,
    "delta": None,
    "disable_dropout": False,
    "cast_lm_head_to_fp32": False,
    "shuffle_dataset": True,
    "generation_batch_size": None,
    "steps_per_generation": None,
    "generation_kwargs": None,
    "max_tool_calling_iterations": None,
    "use_transformers_continuous_batching": False,
    "use_transformers_paged": False,
    # TrainingArguments defaults of transformers 4.51 that GRPOConfig now overrides.
    "gradient_checkpointing": False,
    "optim": "adamw_torch",
    "average_tokens_across_devices": False,
    "logging_steps": 500,
    "report_to": "all",
    "include_num_input_tokens_seen": False,
    "bf16": False,
}

# Fields of TRL 0.16 that the installed TRL no longer has.
REMOVED_SINCE_016 = {
    "max_prompt_length",  # the pipeline drops longer prompts (config grpo.max_prompt_length)
    "vllm_device", "vllm_dtype", "vllm_max_model_len", "vllm_enable_prefix_caching",
    "vllm_guided_decoding_regex",  # deprecated vLLM-server plumbing, renamed or gone
    "vllm_gpu_memory_utilization",  # present again, listed in LEFT_ON_PURPOSE
}  # fmt: skip

# Fields with no effect on what a step computes under the settings above: plumbing, logging,
# and the parameters of options the paper configuration leaves off (other losses, adaptive
# entropy, the vLLM importance-sampling correction, tool calling, MoE).
INERT = {
    "model_init_kwargs", "trust_remote_code", "router_aux_loss_coef", "num_generations_eval",
    "pad_to_multiple_of", "chat_template_kwargs", "vllm_mode", "vllm_model_impl",
    "vllm_enable_sleep_mode", "vllm_structured_outputs_regex", "vllm_server_base_url",
    "vllm_server_host", "vllm_server_port", "vllm_group_port", "vllm_max_model_length",
    "vllm_tensor_parallel_size", "sapo_temperature_neg", "sapo_temperature_pos", "vespo_k_pos",
    "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg", "entropy_coef_min",
    "entropy_coef_max", "entropy_coef_delta", "entropy_target", "vllm_importance_sampling_mode",
    "vllm_importance_sampling_clip_max", "vllm_importance_sampling_clip_min",
    "vllm_importance_sampling_cap", "log_multimodal", "num_completions_to_print",
    "log_unique_prompts", "log_completions_hub_repo", "transformers_continuous_batching_config",
}  # fmt: skip

# Set by the authors (METHOD "Training"); the paper configuration gives their values.
SET_BY_AUTHORS = {"num_generations", "learning_rate", "bf16"}

# Differ from TRL 0.16 on purpose; each has a row in the doc's "Left at TRL 1.16" table.
LEFT_ON_PURPOSE = {
    "gradient_checkpointing", "optim", "average_tokens_across_devices", "logging_steps",
    "report_to", "include_num_input_tokens_seen", "vllm_server_timeout",
    "vllm_gpu_memory_utilization", "use_vllm",
}  # fmt: skip


def _installed_defaults() -> dict[str, object]:
    return {
        field.name: field.default
        for field in dataclasses.fields(trl.GRPOConfig)
        if field.default is not dataclasses.MISSING
    }


def _doc_fields(heading: str) -> set[str]:
    """Field names in the first column of the table under ``heading`` in docs/trl-defaults.md."""
    section = DOC.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


@pytest.fixture(scope="module")
def paper_grpo() -> dict[str, object]:
    """What the paper configuration passes to TRL's GRPOConfig."""
    return read_config(REPO / "config.yaml").grpo.trainer_arguments()


def test_every_installed_grpo_field_is_classified():
    own_fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)} - {
        f.name for f in dataclasses.fields(TrainingArguments)
    }
    known = set(TRL_016) | INERT | LEFT_ON_PURPOSE
    assert own_fields - known == set(), "GRPOConfig fields with no TRL 0.16 meaning recorded"
    assert set(TRL_016) - REMOVED_SINCE_016 <= {f.name for f in dataclasses.fields(trl.GRPOConfig)}


def test_the_paper_configuration_runs_trl_016_where_the_authors_did_not_choose(paper_grpo):
    installed = _installed_defaults()
    differs = {}
    for field, value_016 in TRL_016.items():
        if field in SET_BY_AUTHORS | LEFT_ON_PURPOSE:
            continue
        effective = paper_grpo.get(field, installed[field])
        if effective != value_016:
            differs[field] = (effective, value_016)
    assert differs == {}, "(effective, TRL 0.16) per field"


def test_the_doc_lists_each_moved_default(paper_grpo):
    installed = _installed_defaults()
    moved = {
        field
        for field, value_016 in TRL_016.items()
        if field not in SET_BY_AUTHORS and installed[field] != value_016
    }
    set_back = moved - LEFT_ON_PURPOSE
    assert set_back <= set(paper_grpo), "moved defaults the paper configuration does not set"
    assert set_back <= _doc_fields("Set back to TRL 0.16"), set_back
    assert not LEFT_ON_PURPOSE - _doc_fields("Left at TRL 1.16 on purpose")


def test_trl_accepts_the_paper_values(paper_grpo, tmp_path):
    # bf16 needs a GPU to be checked; everything else goes through GRPOConfig's own validation.
    arguments = {**paper_grpo, "bf16": False, "output_dir": str(tmp_path), "use_cpu": True}
    config = trl.GRPOConfig(**arguments)
    assert (config.loss_type, config.top_k, config.temperature) == ("bnpo", 50, 0.9)
    assert config.scale_rewards == "group" and config.use_bias_correction_kl is False
