"""A variant's training set: the weighted mixture of its sources' prompt datasets.

Each source's prompts (``results/prompts/{source}/{split}/``) are already yes/no balanced by the
prompt stage. A variant's config gives each source a weight (``variants.<v>.sources``); the
mixture gives source ``s`` the share ``w_s / sum(w)`` of the rows. No row is thrown away: the
mixture is sized so that the source that is largest *relative to its share* is used exactly once
(``N = max_s n_s / share_s``), and smaller sources are repeated (whole passes, then a seeded random
subset) up to their share. With equal weights every source contributes the same number of rows,
so a small off-task source is not drowned by a large one; to reproduce the rbio code's sampling
by data density instead, give each source a weight proportional to its size. The rows are
shuffled with the run's seed. GRPO draws prompts from this set epoch after epoch, so repeating a
small source only changes how often its prompts come up, which is what the weight asks for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from datasets import Dataset

# Columns every prompt dataset has (docs/architecture.md); rewards read them by name.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "prompt", "source", "cell_line", "pert", "gene", "label", "negated", "template_id",
    "classes", "class_confidences", "keywords", "pert_go_terms", "gene_go_terms",
)  # fmt: skip

# Named inputs of the training rules: ``prompts_<source>`` (``variant_prompts`` in common.smk).
PROMPT_INPUT_PREFIX = "prompts_"


def prompt_dirs_of(named_inputs: Mapping[str, Any]) -> dict[str, str]:
    """source -> prompt dataset folder, from a training rule's named inputs ``prompts_<source>``.

    >>> prompt_dirs_of({"base": "m/config.json", "prompts_exp": "results/prompts/exp/all"})
    {'exp': 'results/prompts/exp/all'}
    """
    return {
        key.removeprefix(PROMPT_INPUT_PREFIX): str(path)
        for key, path in named_inputs.items()
        if key.startswith(PROMPT_INPUT_PREFIX)
    }


class PromptDatasetError(FileNotFoundError):
    """A prompt dataset that is missing or lacks a column; the message names the folder."""


def load_prompt_dataset(path: str | Path) -> Dataset:
    """``load_from_disk`` with an error that names the folder and the stage that builds it."""
    from datasets import load_from_disk

    path = Path(path)
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise PromptDatasetError(
            f"prompt dataset {path} does not exist or is not a saved Hugging Face dataset "
            "(built by the build_prompts rule)"
        )
    # In memory: the trainer's map/filter steps would otherwise write cache files into the folder,
    # an input of the rule that other jobs read and that provenance digests.
    dataset = load_from_disk(str(path), keep_in_memory=True)
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise PromptDatasetError(f"prompt dataset {path} lacks column(s) {missing}")
    if len(dataset) == 0:
        raise PromptDatasetError(f"prompt dataset {path} has no rows")
    return dataset


def mixture_counts(sizes: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, int]:
    """Rows each source contributes (see the module docstring)."""
    if set(sizes) != set(weights):
        raise ValueError(f"sources {sorted(sizes)} and weights {sorted(weights)} differ")
    total_weight = float(sum(weights.values()))
    if total_weight <= 0 or any(w <= 0 for w in weights.values()):
        raise ValueError(f"source weights must be positive, got {dict(weights)}")
    shares = {source: weights[source] / total_weight for source in sizes}
    total = max(sizes[source] / shares[source] for source in sizes)
    return {source: max(1, math.floor(shares[source] * total + 1e-9)) for source in sizes}


def build_training_set(
    prompt_dirs: Mapping[str, str | Path], weights: Mapping[str, float], seed: int
) -> tuple[Dataset, dict[str, Any]]:
    """Concatenate the sources' prompt datasets in the weighted mixture; returns (dataset, summary)."""
    from datasets import concatenate_datasets

    datasets = {source: load_prompt_dataset(path) for source, path in prompt_dirs.items()}
    counts = mixture_counts({s: len(d) for s, d in datasets.items()}, weights)
    rng = np.random.default_rng(seed)
    parts = []
    for source in sorted(datasets):
        dataset = _common_columns(datasets[source])
        parts.append(dataset.select(_repeat_indices(len(dataset), counts[source], rng)))
    features = parts[0].features
    parts = [part.cast(features) if part.features != features else part for part in parts]
    mixed = concatenate_datasets(parts).shuffle(seed=seed)
    summary = {
        "rows": len(mixed),
        "sources": {
            source: {
                "weight": weights[source],
                "available": len(datasets[source]),
                "used": counts[source],
                "share": round(counts[source] / len(mixed), 4),
            }
            for source in sorted(datasets)
        },
    }
    return mixed, summary


def _common_columns(dataset: Dataset) -> Dataset:
    """Keep the contract's columns only, with list columns typed as lists of strings.

    Sources differ in which list columns are empty (GO terms are empty for EXP rows), and an
    all-empty list column is stored with a null item type: cast it so the sources concatenate.
    """
    from datasets import List, Value

    dataset = dataset.select_columns(list(REQUIRED_COLUMNS))
    features = dataset.features.copy()
    for column in ("keywords", "pert_go_terms", "gene_go_terms"):
        features[column] = List(Value("string"))
    for column in ("source", "cell_line", "pert", "gene", "classes", "class_confidences"):
        features[column] = Value("string")
    features["label"] = Value("int64")
    features["negated"] = Value("bool")
    features["template_id"] = Value("int64")
    return dataset.cast(features) if features != dataset.features else dataset


def _repeat_indices(available: int, wanted: int, rng: np.random.Generator) -> list[int]:
    full, rest = divmod(wanted, available)
    indices = list(range(available)) * full
    indices += sorted(rng.choice(available, size=rest, replace=False).tolist())
    return indices
