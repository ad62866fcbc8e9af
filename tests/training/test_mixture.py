"""The weighted mixture of a variant's prompt sources."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rbio.training.mixture import (
    PromptDatasetError,
    build_training_set,
    load_prompt_dataset,
    mixture_counts,
)
from tests.training.conftest import PAIRS, prompt_rows, save_prompts


def test_equal_weights_repeat_the_smaller_source_and_drop_nothing():
    assert mixture_counts({"exp": 100, "tf": 10}, {"exp": 1.0, "tf": 1.0}) == {
        "exp": 100,
        "tf": 100,
    }


def test_weights_set_the_shares():
    counts = mixture_counts({"exp": 100, "tf": 100}, {"exp": 3.0, "tf": 1.0})
    assert counts == {"exp": 300, "tf": 100}
    assert mixture_counts({"exp": 50}, {"exp": 2.0}) == {"exp": 50}


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="positive"):
        mixture_counts({"exp": 1}, {"exp": 0.0})


def test_mixture_concatenates_sources_with_different_list_types(tmp_path: Path):
    exp = save_prompts(tmp_path / "exp", prompt_rows("exp"))
    go_rows = prompt_rows("go", PAIRS[:2])
    for row in go_rows:  # GO rows carry term lists, EXP rows empty lists (null item type)
        row["pert_go_terms"], row["gene_go_terms"], row["class_confidences"] = ["nucleus"], [], ""
    go = save_prompts(tmp_path / "go", go_rows)
    mixed, summary = build_training_set({"exp": exp, "go": go}, {"exp": 1.0, "go": 1.0}, seed=1)
    assert Counter(mixed["source"]) == {"exp": 4, "go": 4}
    assert summary["sources"]["go"] == {"weight": 1.0, "available": 2, "used": 4, "share": 0.5}
    assert mixed.features["gene_go_terms"].feature.dtype == "string"
    again, _ = build_training_set({"exp": exp, "go": go}, {"exp": 1.0, "go": 1.0}, seed=1)
    assert again["pert"] == mixed["pert"], "same seed, same order"


def test_missing_dataset_and_missing_column_are_named(tmp_path: Path):
    with pytest.raises(PromptDatasetError, match="does not exist.*build_prompts"):
        load_prompt_dataset(tmp_path / "prompts" / "exp" / "loco_k562")
    rows = [{k: v for k, v in row.items() if k != "keywords"} for row in prompt_rows("exp")]
    broken = save_prompts(tmp_path / "broken", rows)
    with pytest.raises(PromptDatasetError, match=r"broken lacks column\(s\) \['keywords'\]"):
        load_prompt_dataset(broken)


def test_training_writes_nothing_into_the_prompt_folders(tmp_path: Path):
    """Prompt folders are inputs of every GRPO job: dataset cache files must not land there."""
    exp = save_prompts(tmp_path / "exp", prompt_rows("exp"))
    before = sorted(path.name for path in Path(exp).iterdir())
    mixed, _ = build_training_set({"exp": exp}, {"exp": 1.0}, seed=1)
    mixed.map(lambda row: {"length": len(row["pert"])}).filter(lambda row: row["length"] > 0)
    assert sorted(path.name for path in Path(exp).iterdir()) == before
