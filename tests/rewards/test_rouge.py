from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from rbio.rewards.rouge import RougeTarget, lcs_length, rouge_f_measures, rouge_tokenize

SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
KINDS = ("rouge1", "rouge2", "rougeL")


def _assert_equal_to_rouge_score(target: str, prediction: str) -> None:
    reference = SCORER.score(target, prediction)
    mine = rouge_f_measures(target, prediction)
    for kind, value in zip(KINDS, mine, strict=True):
        assert abs(reference[kind].fmeasure - value) <= 1e-9, (kind, target, prediction)


def test_many_random_texts_equal_rouge_score() -> None:
    rng = random.Random(7)
    vocabulary = [
        "DNA",
        "binding",
        "repair",
        "nucleus",
        "cytosol",
        "kinase",
        "activity",
        "process",
        "TP53",
        "MDM2",
        "of",
        "the",
        "and",
        "a",
        "1",
        "2",
        "ß",
        "K",
        "é-x",
        "ATP-dependent",
        ",",
        ".",
        ";",
        "(",
        ")",
        "\n",
        "İ",
    ]
    for _ in range(3000):
        target = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 40)))
        prediction = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 60)))
        _assert_equal_to_rouge_score(target, prediction)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_arbitrary_unicode_equals_rouge_score(target: str, prediction: str) -> None:
    _assert_equal_to_rouge_score(target, prediction)


def test_tokenizer_matches_rouge_score() -> None:
    from rouge_score import tokenize

    for text in ["Wnt-signalling, ATP-binding!", "\u212aelvin", "İstanbul", "a_b c\u00b2", ""]:
        assert rouge_tokenize(text) == tokenize.tokenize(text, None)


def _dynamic_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from("abcd"), max_size=80), st.lists(st.sampled_from("abcde"), max_size=80)
)
def test_bit_parallel_lcs(a: list[str], b: list[str]) -> None:
    assert lcs_length(RougeTarget.from_text(" ".join(a)), b) == _dynamic_lcs(a, b)
