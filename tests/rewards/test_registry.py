from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import pytest

from rbio.config import Variant
from rbio.rewards.registry import (
    REWARD_NAMES,
    UnknownRewardError,
    build_reward_functions,
    get_reward,
    needs_policy,
)
from rbio.sources import GO_COMPOSITIONS, SOURCES, default_rewards, go_composition_of


def test_every_name_builds_a_reward_with_that_name(tiny_model: Any, tiny_tokenizer: Any) -> None:
    for name in REWARD_NAMES:
        options = {"model": tiny_model, "tokenizer": tiny_tokenizer} if needs_policy(name) else {}
        reward = get_reward(name, **options)
        assert reward.__name__ == name
        assert callable(reward)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownRewardError) as error:
        get_reward("accuracy")
    message = str(error.value)
    assert "unknown reward 'accuracy'" in message
    for name in REWARD_NAMES:
        assert name in message
    assert isinstance(error.value, KeyError)


def test_bad_options() -> None:
    with pytest.raises(TypeError, match="takes no options"):
        get_reward("mention", weight=2)
    with pytest.raises(TypeError, match="'format': bad options"):
        get_reward("format", max_tokens=3)
    with pytest.raises(TypeError, match="go_likelihood"):
        get_reward("go_likelihood")


def test_fresh_objects_per_call() -> None:
    assert get_reward("go_keyword") is not get_reward("go_keyword")


def test_build_for_the_paper_composite() -> None:
    # What rbio.config_file builds for the variant when config.yaml gives no explicit rewards.
    sources = {"tf": 1.0, "go": 1.0, "mlp": 1.0, "exp": 1.0}
    rewards = default_rewards(sources, go_composition="mean")
    variant = Variant("TF+GO+MLP+EXP", sources, rewards, ("loco_k562",))
    functions, weights = build_reward_functions(variant)
    names = [f.__name__ for f in functions]
    assert names == list(variant.rewards)
    assert dict(zip(names, weights, strict=True)) == {
        "format": 1.0,
        "mention": 1.0,
        "answer": 2.0,
        "go_keyword": 1.0,
        "go_rouge": 1.0,
    }
    for function in functions:  # TRL may pickle reward functions (e.g. for multiprocessing)
        assert pickle.loads(pickle.dumps(function)).__name__ == function.__name__


def test_build_go_likelihood_needs_model(tiny_model: Any, tiny_tokenizer: Any) -> None:
    variant = Variant("GO-LL", {"go": 1.0}, {"format": 1.0, "go_likelihood": 0.5}, ("all",))
    with pytest.raises(ValueError, match="needs the policy model and tokenizer"):
        build_reward_functions(variant)
    functions, weights = build_reward_functions(variant, model=tiny_model, tokenizer=tiny_tokenizer)
    assert [f.__name__ for f in functions] == ["format", "go_likelihood"]
    assert weights == [1.0, 0.5]


def test_build_rejects_unknown_names_before_building() -> None:
    variant = Variant("bad", {"exp": 1.0}, {"format": 1.0, "bleu": 1.0}, ("all",))
    with pytest.raises(UnknownRewardError, match="bleu"):
        build_reward_functions(variant)


def test_defaults_only_use_known_names() -> None:
    for source in SOURCES.values():
        for composition in GO_COMPOSITIONS:
            assert set(source.rewards(composition)) <= set(REWARD_NAMES), source.name
    assert default_rewards({"exp": 1.0, "go": 1.0}, go_composition="mean")["answer"] == 2.0


@pytest.mark.parametrize("composition", list(GO_COMPOSITIONS))
def test_every_go_composition_builds(
    composition: str, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    sources = {"go": 1.0, "exp": 1.0}
    variant = Variant(
        "GO+EXP", sources, default_rewards(sources, go_composition=composition), ("all",)
    )
    functions, weights = build_reward_functions(variant, model=tiny_model, tokenizer=tiny_tokenizer)
    assert [f.__name__ for f in functions] == list(variant.rewards)
    assert weights == list(variant.rewards.values())
    assert go_composition_of(variant.rewards) == composition


def test_what_the_snakefile_imports_loads_no_model_library() -> None:
    # The workflow reads the config, the sources and the reward names while parsing the Snakefile
    # (once per job on a cluster): no torch, transformers, datasets or TRL there.
    code = (
        "import sys, rbio.config_file, rbio.rewards.registry, rbio.sources; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'trl') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
