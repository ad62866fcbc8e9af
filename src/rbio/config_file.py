"""Reading ``config.yaml`` (and overlays) into the typed :class:`rbio.config.Config`.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks shapes and types; this module
checks what refers to what (cell lines, splits, prompt sources, rewards) against the modules that
declare them, and names the offending key and the valid values when something is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rbio.config import (
    CELL_LINES,
    Config,
    ConfigError,
    DataConfig,
    EmbeddingsConfig,
    EvaluationConfig,
    GoConfig,
    GrpoConfig,
    MlflowConfig,
    MlpConfig,
    PromptsConfig,
    SftConfig,
    SplitsConfig,
    TfPmiConfig,
    Variant,
    VerifiersConfig,
)
from rbio.config_validation import validate_config
from rbio.rewards.registry import REWARD_NAMES
from rbio.sources import GO_COMPOSITIONS, SOURCES, default_rewards
from rbio.verifiers.confidence import PROBABILITY_CONFIDENCES


def _check_names(key: str, given: list[str] | tuple[str, ...], valid: list[str] | tuple[str, ...]):
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise ConfigError(
            f"config key '{key}': unknown value(s) {unknown}; valid values: {sorted(valid)}"
        )


def load_config(raw: Mapping[str, Any]) -> Config:
    """Build the typed config from a schema-validated mapping, checking cross references."""
    data = _data(raw["data"])
    config = Config(
        seed=raw["seed"],
        data=data,
        splits=_splits(raw["splits"], data.cell_lines),
        prompts=PromptsConfig(**raw["prompts"]),
        verifiers=_verifiers(raw["verifiers"]),
        model_base=raw["model"]["base"],
        grpo=_grpo(raw["grpo"]),
        sft=SftConfig(raw["sft"]),
        variants={},
        evaluation=_evaluation(raw["evaluation"]),
        mlflow=MlflowConfig(**raw["mlflow"]),
    )
    # The GO composition only changes the variants' default rewards, so it is not part of
    # GoConfig: prompt jobs take that as params and would rerun for a reward setting.
    go_composition = raw["verifiers"]["go"]["composition"]
    _check_names("verifiers.go.composition", [go_composition], list(GO_COMPOSITIONS))
    variants = _variants(raw["variants"], raw["variant_splits"], config.split_names, go_composition)
    _check_names("sft.variants", config.sft["variants"] or [], list(variants))
    return Config(**{**config.__dict__, "variants": variants})


def _data(data: Mapping[str, Any]) -> DataConfig:
    _check_names("data.cell_lines", data["cell_lines"], list(CELL_LINES))
    return DataConfig(
        origin=data["origin"], local_dir=data["local_dir"], cell_lines=tuple(data["cell_lines"])
    )


def _splits(splits: Mapping[str, Any], cell_lines: tuple[str, ...]) -> SplitsConfig:
    _check_names("splits.loco", splits["loco"], cell_lines)
    _check_names("splits.single", splits["single"], cell_lines)
    for line in splits["loco"]:
        if len(cell_lines) < 2:
            raise ConfigError(
                f"config key 'splits.loco': loco_{line} needs at least two cell lines in data.cell_lines"
            )
    return SplitsConfig(
        loco=tuple(splits["loco"]),
        single=tuple(splits["single"]),
        all=splits["all"],
        max_test_rows=splits["max_test_rows"],
        gene_panel=splits["gene_panel"],
        validation_rows=splits["validation_rows"],
    )


def _verifiers(verifiers: Mapping[str, Any]) -> VerifiersConfig:
    go = verifiers["go"]
    mlp = verifiers["mlp"]
    _check_names("verifiers.mlp.confidence", [mlp["confidence"]], PROBABILITY_CONFIDENCES)
    return VerifiersConfig(
        embeddings=EmbeddingsConfig(**verifiers["embeddings"]),
        mlp=MlpConfig(**mlp),
        tf_pmi=TfPmiConfig(**verifiers["tf_pmi"]),
        go=GoConfig(aspects=tuple(go["aspects"]), max_terms_per_aspect=go["max_terms_per_aspect"]),
    )


def _grpo(values: Mapping[str, Any]) -> GrpoConfig:
    # Checked here so that a bad batch size fails while the DAG is built, not in a GPU job.
    batch, generations = values["per_device_train_batch_size"], values["num_generations"]
    if batch % generations:
        raise ConfigError(
            "config key 'grpo.per_device_train_batch_size': "
            f"{batch} is not divisible by grpo.num_generations={generations}"
        )
    window = values["vllm_max_model_length"]
    longest = values["max_prompt_length"] + values["max_completion_length"]
    if values["use_vllm"] and window is not None and window < longest:
        raise ConfigError(
            f"config key 'grpo.vllm_max_model_length': {window} tokens cannot hold a prompt of "
            f"grpo.max_prompt_length={values['max_prompt_length']} plus a completion of "
            f"grpo.max_completion_length={values['max_completion_length']} ({longest}); raise it "
            "or set it to null"
        )
    grpo = GrpoConfig(values)
    grpo.gradient_accumulation_steps(processes=1)  # the global batch fills whole device batches
    return grpo


def _evaluation(evaluation: Mapping[str, Any]) -> EvaluationConfig:
    return EvaluationConfig(
        **{
            **evaluation,
            "prompt_styles": tuple(evaluation["prompt_styles"]),
            "published": tuple(evaluation.get("published") or ()),
        }
    )


def _variants(
    specs: Mapping[str, Any],
    variant_splits: list[str],
    valid_splits: list[str],
    go_composition: str,
) -> dict[str, Variant]:
    """Each variant with its sources, its rewards (default: its sources', the GO sources' by
    ``go_composition``) and its splits."""
    _check_names("variant_splits", variant_splits, valid_splits)
    variants: dict[str, Variant] = {}
    for name, spec in specs.items():
        key = f"variants.{name}"
        _check_names(f"{key}.sources", list(spec["sources"]), list(SOURCES))
        rewards = dict(
            spec.get("rewards") or default_rewards(spec["sources"], go_composition=go_composition)
        )
        _check_names(f"{key}.rewards", list(rewards), REWARD_NAMES)
        splits = tuple(spec.get("splits") or variant_splits)
        _check_names(f"{key}.splits", list(splits), valid_splits)
        variants[name] = Variant(
            name=name, sources=dict(spec["sources"]), rewards=rewards, splits=splits
        )
    return variants


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay nested mappings the way Snakemake merges ``--configfile`` over ``configfile:``."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config(*paths: str | Path, schema: str | Path | None = None) -> Config:
    """Read, merge (later files win), schema-validate and type-check config files.

    The workflow does the same through Snakemake; this is for tests, benchmarks and the CLI.
    """
    raw: dict[str, Any] = {}
    for path in paths:
        with open(path) as handle:
            raw = deep_merge(raw, yaml.safe_load(handle) or {})
    schema_path = (
        Path(schema)
        if schema
        else Path(paths[0]).resolve().parent / "workflow/schemas/config.schema.yaml"
    )
    validate_config(raw, schema_path)
    return load_config(raw)
