from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from bench.go_rouge_pairs import KINDS as PAIR_KINDS
from bench.go_rouge_pairs import load_gene_terms, make_pairs
from rbio.rewards import rouge
from rbio.rewards.rouge import RougeTarget, lcs_length, rouge_f_measures, rouge_tokenize, stem
from tests.helpers import shared_data_dir

# The authors' scorer: rouge-score with Porter stemming.
SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
UNSTEMMED = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
KINDS = ("rouge1", "rouge2", "rougeL")


def _reference(scorer: rouge_scorer.RougeScorer, target: str, prediction: str) -> tuple:
    scores = scorer.score(target, prediction)
    return tuple(scores[kind].fmeasure for kind in KINDS)


def _assert_equal_to_rouge_score(target: str, prediction: str) -> None:
    # Equal to the last bit: same integer counts, same float operations.
    assert rouge_f_measures(target, prediction) == _reference(SCORER, target, prediction), (
        target,
        prediction,
    )


@pytest.mark.parametrize(
    ("target", "prediction", "expected", "unstemmed"),
    [
        # "binds" and "binding" both stem to "bind": every unigram matches, the order does not.
        ("DNA binding", "binds DNA", (1.0, 0.0, 0.5), (0.5, 0.0, 0.5)),
        # "activities"/"activity" -> "activ", "kinases"/"kinase" -> "kinas"
        (
            "protein kinase activity",
            "protein kinases activities",
            (1.0, 1.0, 1.0),
            (1 / 3, 0.0, 1 / 3),
        ),
        # "ions" (4 characters) is stemmed to "ion"; "ion" (3) is left as it is and matches
        ("ion transport", "ions transported", (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
        # "regulation" and "regulates" -> "regul"; "of" is kept
        ("regulation of apoptosis", "apoptosis regulates", (0.8, 0.0, 0.4), (0.4, 0.0, 0.4)),
        # a stem is not a prefix match: "bound" stays "bound"
        ("DNA binding", "bound DNA", (0.5, 0.0, 0.5), (0.5, 0.0, 0.5)),
    ],
)
def test_stemmed_worked_examples(target, prediction, expected, unstemmed) -> None:
    mine = rouge_f_measures(target, prediction)
    assert mine == pytest.approx(expected, abs=1e-12)
    assert mine == _reference(SCORER, target, prediction)
    assert _reference(UNSTEMMED, target, prediction) == pytest.approx(unstemmed, abs=1e-12)


def test_stem_is_porter_on_tokens_longer_than_three_characters() -> None:
    from nltk.stem.porter import PorterStemmer

    porter = PorterStemmer()
    for token in ("does", "dying", "skies", "news", "generously", "sses", "abcd", "1234", "a1b2c"):
        assert stem(token) == porter.stem(token), token
    # Three characters or fewer are never stemmed ("was" would become "wa", "ies" "i").
    assert [stem(t) for t in ("was", "ies", "has", "a")] == ["was", "ies", "has", "a"]
    assert rouge_tokenize("It Binds; ACTIVITIES") == ["it", "bind", "activ"]


def test_stem_cache_is_bounded_by_entries_and_token_length(monkeypatch) -> None:
    monkeypatch.setattr(rouge, "STEM_CACHE_ENTRIES", 50)
    rouge.clear_stem_cache()
    words = [f"binding{i}x" for i in range(400)]
    long_token = "binding" * 20  # longer than STEM_CACHE_TOKEN_LENGTH: stemmed, not kept
    text = " ".join(words) + " " + long_token
    assert rouge_tokenize(text) == [*(stem(w) for w in words), stem(long_token)]
    assert len(rouge._stems) <= 50
    assert long_token not in rouge._stems
    _assert_equal_to_rouge_score(" ".join(words[:30]) + " " + long_token, text)
    rouge.clear_stem_cache()


def test_many_random_texts_equal_rouge_score() -> None:
    rng = random.Random(7)
    vocabulary = [
        "DNA",
        "binding",
        "binds",
        "activities",
        "ions",
        "ion",
        "dying",
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
    from nltk.stem import porter
    from rouge_score import tokenize

    stemmer = porter.PorterStemmer()
    for text in ["Wnt-signalling, ATP-binding!", "\u212aelvin", "İstanbul", "a_b c\u00b2", ""]:
        assert rouge_tokenize(text) == tokenize.tokenize(text, stemmer)


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


def _check_real_pairs(pairs) -> None:
    """Every F-measure of every pair equal to rouge-score's; every kind of text covered and
    stemming changing the score for some of them (else the pairs would not test it)."""
    stemming_matters = 0
    for gene, terms, kind, text in pairs:
        target = ", ".join(terms)
        reference = _reference(SCORER, target, text)
        assert rouge_f_measures(target, text) == reference, (gene, kind, text)
        stemming_matters += reference != _reference(UNSTEMMED, target, text)
    assert {kind for *_, kind, _ in pairs} == set(PAIR_KINDS)
    assert stemming_matters > len(pairs) // 10


def test_real_go_terms_and_policy_like_texts_equal_rouge_score() -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("no data folder (../shared/data or RBIO_DATA_DIR)")
    gene_terms = load_gene_terms(data, aspects=("C",))
    _check_real_pairs(make_pairs(gene_terms, 400, seed=3))


@pytest.mark.slow
def test_ten_thousand_real_pairs_equal_rouge_score() -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("no data folder (../shared/data or RBIO_DATA_DIR)")
    _check_real_pairs(make_pairs(load_gene_terms(data), 10_000, seed=0))
