"""Typed view of the validated ``config.yaml``: one frozen dataclass per config section.

``rbio.config_file`` reads, merges and checks config files into a :class:`Config`; this module
only declares the sections, so every part of the package can take them without importing what the
loader checks against (the prompt sources, the reward names).

Jobs never see the whole config: each rule passes the sections its job uses as ``params:`` (plain
values, from :func:`as_params`, so that Snakemake reruns a job when one of them changes), and the
job's script rebuilds the typed section with :func:`from_params`. Where the data folder lives and
where runs are tracked change no result: they reach jobs through the environment
(:func:`data_dir`, :func:`tracking_target`), never as params.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PerturbQA cell lines and how prompts spell them.
CELL_LINES: dict[str, str] = {"k562": "K562", "rpe1": "RPE1", "hepg2": "HepG2", "jurkat": "Jurkat"}

DATA_DIR_ENV = "RBIO_DATA_DIR"
# MLflow's own variables: the workflow sets them from config `mlflow` unless already set.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "rbio"
# Every placeholder a site replaces (profiles/slurm: partitions, account, tracking server) starts
# with this; no real value does.
PLACEHOLDER_MARK = "YOUR_"


class ConfigError(ValueError):
    """A configuration value that is wrong; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    origin: str  # "local" (data folder) or "remote" (upstream downloads)
    local_dir: str
    cell_lines: tuple[str, ...]

    def resolved_dir(self) -> Path:
        """The local data folder, absolute; ``$RBIO_DATA_DIR`` wins over the config value."""
        return Path(os.environ.get(DATA_DIR_ENV) or self.local_dir).resolve()

    def check_local_files(self, relative_paths: Iterable[str]) -> None:
        """With origin local, fail in one line when the data folder or one of these files in it
        is missing (else every job that copies one fails on its own, after the DAG is built)."""
        if self.origin != "local":
            return
        folder = self.resolved_dir()
        how = f"set config data.local_dir or ${DATA_DIR_ENV} to a folder laid out like shared/data"
        if not folder.is_dir():
            raise ConfigError(f"data folder {folder} does not exist (data.origin local): {how}")
        missing = [path for path in relative_paths if not (folder / path).is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ConfigError(f"data folder {folder} lacks {missing[0]}{more}: {how}")


@dataclass(frozen=True)
class SplitsConfig:
    loco: tuple[str, ...]
    single: tuple[str, ...]
    all: bool
    max_test_rows: int | None
    gene_panel: int | None
    validation_rows: int | None


@dataclass(frozen=True)
class PromptsConfig:
    templates: str
    negated_fraction: float
    balanced: bool
    max_train_prompts: int | None
    max_tf_questions: int | None


@dataclass(frozen=True)
class EmbeddingsConfig:
    kind: str  # esm2 | go_svd | onehot
    dim: int
    esm2_path: str | None


@dataclass(frozen=True)
class MlpConfig:
    hidden: int
    epochs: int
    batch_size: int
    learning_rate: float
    # How the verifier's P(DE) becomes the MLP prompts' answer confidences: a name of
    # rbio.verifiers.confidence.PROBABILITY_CONFIDENCES ("raw" is rbio1's "1-p|p"). None in the
    # verifier's training job, which is not given it: changing it retrains no verifier.
    confidence: str | None = None


@dataclass(frozen=True)
class TfPmiConfig:
    backend: str
    h5ad: str | None
    checkpoint: str
    top_fraction: float


@dataclass(frozen=True)
class GoConfig:
    aspects: tuple[str, ...]
    max_terms_per_aspect: int


@dataclass(frozen=True)
class VerifiersConfig:
    embeddings: EmbeddingsConfig
    mlp: MlpConfig
    tf_pmi: TfPmiConfig
    go: GoConfig


class TrainerSection(Mapping[str, Any]):
    """A training stage's config section as given, like open-r1's recipes: the schema is the one
    list of its keys (and checks them); the TRL arguments among them go to the stage's TRL config
    class unchanged (:meth:`trainer_arguments`), so a new TRL setting is a schema entry and a
    value, no code. ``PIPELINE_KEYS``: the keys the pipeline handles itself."""

    PIPELINE_KEYS: tuple[str, ...] = ()

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._values!r})"

    def trainer_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the TRL config: every key but the pipeline's own."""
        return {k: v for k, v in self._values.items() if k not in self.PIPELINE_KEYS}


# Keys of config `grpo` that the pipeline handles itself; every other key is an argument of TRL's
# GRPOConfig, passed through as the config gives it.
GRPO_PIPELINE_KEYS: tuple[str, ...] = (
    "max_prompt_length",
    "lora",
    "deepspeed_config",
    "global_prompts_per_step",
    "checkpoint_every_minutes",
    "heldout_every_steps",
)


class GrpoConfig(TrainerSection):
    """Config ``grpo``: TRL ``GRPOConfig`` arguments and the pipeline's GRPO settings."""

    PIPELINE_KEYS = GRPO_PIPELINE_KEYS

    @property
    def max_prompt_length(self) -> int:
        """Longer training prompts are dropped (TRL no longer truncates them)."""
        return self._values["max_prompt_length"]

    @property
    def lora(self) -> dict[str, Any] | None:
        """peft LoRA settings (r, alpha, dropout), or None for full fine-tuning."""
        return self._values["lora"]

    @property
    def vllm_server_gpus(self) -> int:
        """GPUs of the job that serve generation (``trl vllm-serve``, vllm_mode server): the
        server's tensor-parallel size; 0 when vLLM runs inside the training processes or not at all."""
        if self._values["use_vllm"] and self._values["vllm_mode"] == "server":
            return int(self._values["vllm_tensor_parallel_size"])
        return 0

    @property
    def checkpoint_every_minutes(self) -> float | None:
        """Wall time between checkpoints besides ``save_steps`` (None: step-based only)."""
        return self._values["checkpoint_every_minutes"]

    @property
    def deepspeed_config(self) -> str:
        """The accelerate config of multi-GPU runs, relative to the workflow root."""
        return self._values["deepspeed_config"]

    @property
    def completions_per_step(self) -> int:
        """Completions in one optimizer step, over all GPUs (prompts per step x generations)."""
        return self._values["global_prompts_per_step"] * self._values["num_generations"]

    def gradient_accumulation_steps(self, processes: int) -> int:
        """Micro-batches per optimizer step that keep the global batch
        (``global_prompts_per_step``) whatever the number of GPU processes: TRL's GRPO generates
        once per optimizer step for all of them (``steps_per_generation`` follows this)."""
        per_pass = self._values["per_device_train_batch_size"] * processes
        if processes < 1 or self.completions_per_step % per_pass:
            batch = self._values["per_device_train_batch_size"]
            raise ConfigError(
                f"config key 'grpo.global_prompts_per_step': {self.completions_per_step} "
                f"completions per optimizer step ({self['global_prompts_per_step']} prompts x "
                f"{self['num_generations']} generations) do not split evenly over {processes} "
                f"GPU(s) x grpo.per_device_train_batch_size={batch}: make the completions a "
                f"multiple of {per_pass} (global_prompts_per_step or num_generations), or give "
                "train_grpo a number of GPUs whose device batches divide them"
            )
        return self.completions_per_step // per_pass


# Keys of config `sft` that the pipeline handles itself; every other key is an argument of TRL's
# SFTConfig, passed through as the config gives it.
SFT_PIPELINE_KEYS: tuple[str, ...] = ("enabled", "variants", "heldout_every_steps")


class SftConfig(TrainerSection):
    """Config ``sft``: the optional supervised stage before GRPO (``rbio.training.sft``)."""

    PIPELINE_KEYS = SFT_PIPELINE_KEYS

    @property
    def enabled(self) -> bool:
        """The stage runs (for the variants of :meth:`cold_starts`)."""
        return bool(self._values["enabled"])

    def cold_starts(self, variant: str) -> bool:
        """Whether GRPO of ``variant`` starts from its SFT model (else from the base model): the
        stage is enabled and ``variants`` is null (all) or names it."""
        chosen = self._values["variants"]
        return self.enabled and (chosen is None or variant in chosen)


@dataclass(frozen=True)
class Variant:
    name: str
    sources: dict[str, float]
    rewards: dict[str, float]
    splits: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationConfig:
    prompt_styles: tuple[str, ...]
    greedy: bool
    num_samples: int
    temperature: float
    max_new_tokens: int
    batch_size: int
    bootstrap: int
    base_model: bool
    # Generation engine: "vllm" (GPU, the gpu extra) or "hf" (transformers' generate, any device).
    engine: str = "hf"
    # Answer-likelihood P(yes) beside the sampled share (rbio.evaluation.likelihood).
    likelihood_scoring: bool = True
    # Released rbio1 checkpoints to download and evaluate (names without the "rbio1-" prefix).
    published: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_decoding(self.greedy, self.num_samples)


def check_decoding(greedy: bool, num_samples: int) -> None:
    """Fail when evaluation would generate no answer at all (checked when the config is loaded,
    so that it does not first surface inside every evaluation job)."""
    if not greedy and num_samples < 1:
        raise ConfigError(
            "config key 'evaluation': greedy is false and num_samples is 0, so no answer would be "
            "generated; set evaluation.greedy: true or evaluation.num_samples >= 1"
        )


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str
    experiment: str

    def resolved_uri(self) -> str:
        uri = os.environ.get(TRACKING_URI_ENV) or self.tracking_uri
        if PLACEHOLDER_MARK in uri:  # else every job fails, after retries, on an unknown host
            raise ConfigError(
                f"mlflow.tracking_uri is the placeholder '{uri}' (profiles/slurm): start the "
                "tracking server (README, 'Tracking server') and put its address there, or "
                f"export {TRACKING_URI_ENV}"
            )
        return uri

    def resolved_experiment(self) -> str:
        return os.environ.get(EXPERIMENT_ENV) or self.experiment


@dataclass(frozen=True)
class Config:
    seed: int
    data: DataConfig
    splits: SplitsConfig
    prompts: PromptsConfig
    verifiers: VerifiersConfig
    model_base: str
    grpo: GrpoConfig
    sft: SftConfig
    variants: dict[str, Variant]
    evaluation: EvaluationConfig
    mlflow: MlflowConfig

    @property
    def split_names(self) -> list[str]:
        """Every split the data stage builds, in a stable order."""
        names = [f"loco_{line}" for line in self.splits.loco]
        names += [f"single_{line}" for line in self.splits.single]
        if self.splits.all:
            names.append("all")
        return names

    def variant_splits(self) -> list[tuple[str, str]]:
        """Every (variant, split) pair that is trained and evaluated."""
        return [(name, split) for name, v in self.variants.items() for split in v.splits]

    def source_splits(self) -> list[tuple[str, str]]:
        """Every (prompt source, split) pair some variant trains on."""
        pairs = {
            (source, split)
            for v in self.variants.values()
            for source in v.sources
            for split in v.splits
        }
        return sorted(pairs)


def as_params(section: Any) -> Any:
    """A typed config section as plain values (dicts, lists, numbers, strings) for ``params:``.

    Snakemake compares params by ``repr`` of built-in types only (a dataclass would be ignored),
    so the typed section is flattened here and rebuilt in the job by :func:`from_params`.
    """
    if dataclasses.is_dataclass(section):
        return {f.name: as_params(getattr(section, f.name)) for f in dataclasses.fields(section)}
    if isinstance(section, Mapping):
        return {key: as_params(value) for key, value in section.items()}
    if isinstance(section, list | tuple):
        return [as_params(value) for value in section]
    return section


def from_params(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a typed config section (a dataclass of this module) from :func:`as_params`."""
    if not dataclasses.is_dataclass(cls):  # a section kept as the mapping it is (GrpoConfig)
        return cls(values)
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            fields[f.name] = _typed(hints[f.name], values[f.name])
    return cls(**fields)


def _typed(hint: Any, value: Any) -> Any:
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or issubclass(hint, Mapping)):
        return from_params(hint, value)
    if typing.get_origin(hint) is tuple and value is not None:
        return tuple(value)
    if typing.get_origin(hint) is dict and value is not None:
        item = typing.get_args(hint)[1]
        return {key: _typed(item, entry) for key, entry in value.items()}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(
            (_typed(arg, value) for arg in typing.get_args(hint) if arg is not type(None)), value
        )
    return value


def data_dir() -> Path:
    """The data folder a job reads, as the workflow resolved it (``$RBIO_DATA_DIR``)."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        raise ConfigError(
            f"${DATA_DIR_ENV} is not set: the workflow sets it from config data.local_dir; "
            "outside the workflow, point it at a folder laid out like ../shared/data"
        )
    return Path(value)


def tracking_target() -> tuple[str, str]:
    """(tracking URI, experiment) a job logs to, as the workflow set them in the environment."""
    uri = os.environ.get(TRACKING_URI_ENV)
    if not uri:
        raise ConfigError(
            f"${TRACKING_URI_ENV} is not set: the workflow sets it from config mlflow"
        )
    return uri, os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT


def split_lines(split: str, cell_lines: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
    """(training lines, test lines) of a split name."""
    if split == "all":
        return list(cell_lines), list(cell_lines)
    kind, _, line = split.partition("_")
    if kind == "loco":
        return [other for other in cell_lines if other != line], [line]
    if kind == "single":
        return [line], [line]
    raise ConfigError(f"unknown split '{split}'; valid forms: loco_<line>, single_<line>, all")
