"""Robustness: whatever the model writes, no reward raises and every value stays in range."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rbio.rewards.answer import answer
from rbio.rewards.format import format_reward
from rbio.rewards.go import GoKeywordReward, GoRougeReward
from rbio.rewards.mention import mention
from rbio.rewards.parsing import parse_answer

PIECES = st.one_of(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<gene_info>",
            "</gene_info>",
            "<THINK>",
            "< think>",
            "yes",
            "no",
            "Yes.",
            "**no**",
            "yes and no",
            "TP53",
            "tp53",
            "MDM2",
            "DNA binding",
            "nucleus",
            " ",
            "\n",
            "ｙｅｓ",
            "Yеs",
            "\u200b",
            "<",
            ">",
            "/",
        ]
    ),
    st.text(max_size=12),
)
COMPLETIONS = st.lists(PIECES, max_size=40).map("".join)
SOURCES = st.sampled_from(["exp", "mlp", "tf", "go", "go_c", "go_f", "go_p", None])


def _columns(n: int, source: str | None) -> dict[str, list[Any]]:
    return {
        "source": [source] * n,
        "classes": ["no|yes"] * n,
        "class_confidences": ["0.3|0.7"] * n,
        "keywords": [["TP53", "MDM2"]] * n,
        "pert": ["TP53"] * n,
        "gene": ["MDM2"] * n,
        "pert_go_terms": [["DNA binding", "nucleus"]] * n,
        "gene_go_terms": [["nucleus"]] * n,
    }


def _check_all(completions: list[Any], source: str | None) -> None:
    columns = _columns(len(completions), source)
    for reward in (format_reward, mention, answer, GoKeywordReward(), GoRougeReward()):
        values = reward(completions, **columns)
        assert len(values) == len(completions)
        for value in values:
            if value is None:
                assert reward.__name__.startswith("go_") and source not in (
                    None,
                    "go",
                    "go_c",
                    "go_f",
                    "go_p",
                )
            else:
                assert 0.0 <= value <= 1.0, (reward.__name__, value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMPLETIONS, min_size=1, max_size=4), SOURCES)
def test_rewards_never_raise_and_stay_in_range(texts: list[str], source: str | None) -> None:
    _check_all(texts, source)
    _check_all([[{"role": "assistant", "content": t}] for t in texts], source)


@settings(max_examples=400, deadline=None)
@given(COMPLETIONS)
def test_parse_answer_is_deterministic_and_total(text: str) -> None:
    result = parse_answer(text)
    assert result in ("yes", "no", None)
    assert parse_answer(str(text)) == result  # no hidden state


@settings(max_examples=200, deadline=None)
@given(COMPLETIONS)
def test_plain_and_conversational_agree(text: str) -> None:
    columns = _columns(1, "go")
    conversational = [[{"role": "assistant", "content": text}]]
    for reward in (format_reward, mention, answer, GoKeywordReward(), GoRougeReward()):
        assert reward([text], **columns) == reward(conversational, **columns)


def test_huge_completions_are_handled_quickly() -> None:
    body = "TP53 DNA binding nucleus yes no é漢字 " * 3000  # ~100k characters
    completions = [
        "<gene_info>" + body + "</gene_info><think>" + body + "</think><answer>yes</answer>",
        "<think>" * 5000 + body,
        body,
        "<answer>" + "yes " * 25000 + "</answer>",
    ]
    assert all(len(c) >= 100_000 for c in completions)
    start = time.perf_counter()
    for source in ("go", "exp"):
        _check_all(completions, source)
    assert time.perf_counter() - start < 10.0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(COMPLETIONS, min_size=1, max_size=3), SOURCES)
def test_go_likelihood_is_none_or_finite_non_positive(
    tiny_model: Any, tiny_tokenizer: Any, texts: list[str], source: str | None
) -> None:
    import math

    from rbio.rewards.go import GoLikelihoodReward

    reward = GoLikelihoodReward(tiny_model, tiny_tokenizer, max_context_tokens=64)
    for value in reward(texts, **_columns(len(texts), source)):
        if value is None:
            assert source not in (None, "go", "go_c", "go_f", "go_p")
        else:
            assert math.isfinite(value) and value <= 0.0
