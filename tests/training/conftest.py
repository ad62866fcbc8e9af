"""Fixtures for training tests: the tiny model, small prompt datasets, the tiny config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rbio.config import Config
from rbio.config_file import deep_merge, load_config
from tests.helpers import REPO, TINY

SYSTEM = (
    "A conversation between User and Biologist. The Biologist first thinks about the reasoning "
    "process in the mind and then provides the User with the answer, within <think> </think> and "
    "<answer> </answer> tags."
)
PAIRS = [("TP53", "MYC", 1), ("GATA1", "HBG2", 0), ("RPL3", "ZNF217", 1), ("MYC", "GATA1", 0)]


def prompt_rows(source: str, pairs=PAIRS, cell_line: str = "K562") -> list[dict[str, Any]]:
    rows = []
    for pert, gene, label in pairs:
        question = (
            f"Is a knockdown of {pert} in {cell_line} cells likely to result in differential "
            f"expression of {gene}? The answer is either yes or no."
        )
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question},
                ],
                "source": source,
                "cell_line": cell_line,
                "pert": pert,
                "gene": gene,
                "label": label,
                "negated": False,
                "template_id": 0,
                "classes": "no|yes",
                "class_confidences": "0|1" if label else "1|0",
                "keywords": [pert, gene],
                "pert_go_terms": [],
                "gene_go_terms": [],
            }
        )
    return rows


def save_prompts(path: Path, rows: list[dict[str, Any]]) -> Path:
    from datasets import Dataset

    Dataset.from_list(rows).save_to_disk(str(path))
    return path


def tiny_config(**grpo: Any) -> Config:
    import yaml

    raw = deep_merge(
        yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(TINY.read_text())
    )
    raw = deep_merge(raw, {"grpo": grpo})
    return load_config(raw)


def grpo_job(
    cfg: Config, base: Path, prompts: Path, tmp_path: Path, variant: str = "EXP", **overrides
):
    """The job the train_grpo rule would build for (variant, loco_k562) from ``cfg``."""
    from rbio.training.grpo import GrpoJob

    fields = {
        "variant": cfg.variants[variant],
        "split": "loco_k562",
        "grpo": cfg.grpo,
        "seed": cfg.seed,
        "model_base": cfg.model_base,
        "base_model": str(base),
        "prompt_dirs": {"exp": str(prompts)},
        "out_dir": str(tmp_path / "models" / variant / "loco_k562"),
        "checkpoint_dir": str(tmp_path / "checkpoints" / variant / "loco_k562"),
        "tags": {"provenance_digest": "test-digest"},
    }
    return GrpoJob(**{**fields, **overrides})


def graded_mention(completions, keywords, **kwargs) -> list[float | None]:
    """Stand-in graded reward: share of the row's genes named in the completion."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [
        sum(k in text for k in keys) / len(keys) for text, keys in zip(texts, keywords, strict=True)
    ]


def length_reward(completions, **kwargs) -> list[float | None]:
    """Stand-in graded reward with variance for a random model: shorter is better."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 / (1.0 + len(text)) for text in texts]


def exact_answer(completions, label, **kwargs) -> list[float | None]:
    """Stand-in 0/1 answer reward."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    expected = ["<answer>yes</answer>" if y else "<answer>no</answer>" for y in label]
    return [float(e in text) for text, e in zip(texts, expected, strict=True)]


def named(func, name: str):
    def reward(*args, **kwargs):
        return func(*args, **kwargs)

    reward.__name__ = name
    return reward


def stand_in_rewards(variant, model=None, tokenizer=None):
    """Local stand-in for rbio.rewards.registry.build_reward_functions, with the registry's names."""
    del model, tokenizer
    funcs = {
        "format": named(length_reward, "format"),
        "mention": named(graded_mention, "mention"),
        "answer": named(exact_answer, "answer"),
    }
    chosen = [funcs[name] for name in variant.rewards]
    return chosen, [variant.rewards[name] for name in variant.rewards]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from rbio.training.tiny_model import build_tiny_model

    texts = [g for pair in PAIRS for g in pair[:2]] + [
        r["prompt"][1]["content"] for r in prompt_rows("exp")
    ]
    texts += [SYSTEM, "<think> </think> <answer>yes</answer> <answer>no</answer>"]
    return build_tiny_model(tmp_path_factory.mktemp("base") / "base", texts, seed=0)


@pytest.fixture
def exp_prompts(tmp_path) -> Path:
    return save_prompts(tmp_path / "prompts" / "exp" / "loco_k562", prompt_rows("exp"))


@pytest.fixture
def validation_rows(tmp_path) -> Path:
    """A split's validation.parquet: training-line rows of both classes, as make_split writes."""
    import pandas as pd

    path = tmp_path / "splits" / "loco_k562" / "validation.parquet"
    path.parent.mkdir(parents=True)
    pairs = [*PAIRS, ("ZNF217", "TP53", 1), ("HBG2", "RPL3", 0)]
    frame = pd.DataFrame(pairs, columns=["pert", "gene", "label"]).assign(cell_line="rpe1")
    frame.to_parquet(path)
    return path
