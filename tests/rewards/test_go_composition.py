"""The GO compositions (config verifiers.go.composition) on worked examples: each row's total
reward as TRL adds it up (weights times rewards, None counting 0), with the GO part computed here
by hand and ROUGE by rouge-score with ``use_stemmer=True``, the authors' scorer."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from rouge_score.rouge_scorer import RougeScorer

from rbio.config import Variant
from rbio.rewards.format import FormatReward
from rbio.rewards.go import EMA_VARIANCE_FLOOR, EmaSigmoid, GoLikelihoodReward
from rbio.rewards.mention import mention
from rbio.rewards.registry import build_reward_functions
from rbio.sources import GO_COMPOSITIONS, default_rewards

GENE_INFO = "TP53 is involved in DNA binding and apoptotic process; it localises to the nucleus."
COMPLETION = (
    f"<gene_info>{GENE_INFO}</gene_info><think>TP53 may regulate MDM2.</think><answer>yes</answer>"
)
PERT_TERMS = ["DNA binding", "apoptotic process", "cytosol"]
# TP53 is annotated; the monitored gene MDM2 has no terms (unannotated).
ROW = {
    "source": ["go"],
    "pert": ["TP53"],
    "gene": ["MDM2"],
    "keywords": [["TP53", "MDM2"]],
    "pert_go_terms": [PERT_TERMS],
    "gene_go_terms": [[]],
    "classes": ["no|yes"],
    "class_confidences": [""],
}
# Two of the three term names appear verbatim in the gene_info text.
KEYWORD = 2 / 3


def rouge_flavours(terms: list[str], text: str) -> list[float]:
    scores = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(
        ", ".join(terms), text
    )
    return [scores[flavour].fmeasure for flavour in ("rouge1", "rouge2", "rougeL")]


def format_and_mention(completions: list[str], rows: dict[str, list[Any]]) -> list[float]:
    """The composition-independent part of every total: format + mention, weight 1 each."""
    formats = FormatReward()(completions, **rows)
    mentions = mention(completions, **rows)
    return [f + m for f, m in zip(formats, mentions, strict=True)]


def totals(
    composition: str, completions: list[str], rows: dict[str, list[Any]], **policy: Any
) -> list[float]:
    """Each completion's total as GRPO adds it up from the GO variant's default rewards."""
    variant = Variant(
        "GO", {"go": 1.0}, default_rewards({"go": 1.0}, go_composition=composition), ("all",)
    )
    functions, weights = build_reward_functions(variant, **policy)
    per_function = [function(completions, **rows) for function in functions]
    return [
        sum(w * (scores[i] or 0.0) for w, scores in zip(weights, per_function, strict=True))
        for i in range(len(completions))
    ]


def test_mean_composition_averages_keyword_and_rouge_over_annotated_genes() -> None:
    rouge = sum(rouge_flavours(PERT_TERMS, GENE_INFO)) / 3
    expected = format_and_mention([COMPLETION], ROW)[0] + KEYWORD + rouge
    assert totals("mean", [COMPLETION], ROW) == [pytest.approx(expected, abs=1e-12)]


def test_sum_composition_adds_every_term_of_both_genes(
    tiny_model: Any, tiny_tokenizer: Any
) -> None:
    # The unannotated MDM2 adds 0; TP53 adds keyword + ROUGE-1 + ROUGE-2 + ROUGE-L + likelihood.
    likelihood = GoLikelihoodReward(tiny_model, tiny_tokenizer)([COMPLETION], **ROW)[0]
    assert likelihood is not None and likelihood < 0
    go = KEYWORD + sum(rouge_flavours(PERT_TERMS, GENE_INFO)) + likelihood
    expected = format_and_mention([COMPLETION], ROW)[0] + go
    got = totals("sum", [COMPLETION], ROW, model=tiny_model, tokenizer=tiny_tokenizer)
    assert got == [pytest.approx(expected, abs=1e-9)]


def test_sum_composition_sums_two_annotated_genes(tiny_model: Any, tiny_tokenizer: Any) -> None:
    gene_terms = ["nucleus", "ubiquitin ligase activity"]
    rows = {**ROW, "gene_go_terms": [gene_terms]}
    variant = Variant("GO", {"go": 1.0}, GO_COMPOSITIONS["sum"], ("all",))
    functions, _ = build_reward_functions(variant, model=tiny_model, tokenizer=tiny_tokenizer)
    scores = {f.__name__: f([COMPLETION], **rows)[0] for f in functions}
    assert scores["go_keyword_sum"] == pytest.approx(KEYWORD + 1 / 2)
    rouge = sum(rouge_flavours(PERT_TERMS, GENE_INFO)) + sum(rouge_flavours(gene_terms, GENE_INFO))
    assert scores["go_rouge_sum"] == pytest.approx(rouge, abs=1e-12)
    # The likelihood per gene, each alone on a row, summed.
    single = GoLikelihoodReward(tiny_model, tiny_tokenizer)
    pert_only = single([COMPLETION], **{**rows, "gene_go_terms": [[]]})[0]
    gene_only = single([COMPLETION], **{**rows, "pert_go_terms": [[]]})[0]
    assert scores["go_likelihood_sum"] == pytest.approx(pert_only + gene_only, abs=1e-5)


def test_answer_ema_composition_normalises_the_go_score_of_the_batch() -> None:
    # A batch of the worked completion and one that writes nothing about the genes: scores x and 0,
    # so the first batch's mean is x / 2 and its variance (x / 2) ** 2.
    blank = (
        "<gene_info>No idea.</gene_info><think>TP53 may regulate MDM2.</think><answer>yes</answer>"
    )
    rows = {key: values * 2 for key, values in ROW.items()}
    x = KEYWORD + sum(rouge_flavours(PERT_TERMS, GENE_INFO)) / 3
    mean, scale = x / 2, math.sqrt((x / 2) ** 2 + EMA_VARIANCE_FLOOR)
    sigmoid = [1 / (1 + math.exp(-(value - mean) / scale)) for value in (x, 0.0)]
    base = format_and_mention([COMPLETION, blank], rows)
    expected = [b + 2 * s for b, s in zip(base, sigmoid, strict=True)]
    assert totals("answer_ema", [COMPLETION, blank], rows) == pytest.approx(expected, abs=1e-12)


def test_ema_sigmoid_sequence_on_fixed_batches() -> None:
    normalise = EmaSigmoid()  # alpha 0.001
    floor = EMA_VARIANCE_FLOOR

    def sigmoid(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    # First batch: its own mean 2 and variance 1.
    assert normalise([1.0, 3.0]) == pytest.approx(
        [sigmoid(-1 / math.sqrt(1 + floor)), sigmoid(1 / math.sqrt(1 + floor))]
    )
    assert (normalise.mean, normalise.variance) == pytest.approx((2.0, 1.0))
    # Batch mean 2 keeps the mean; no spread about it: variance 0.999 * 1.
    assert normalise([2.0, 2.0]) == [0.5, 0.5]
    assert (normalise.mean, normalise.variance) == pytest.approx((2.0, 0.999))
    # Rows the reward does not apply to change nothing.
    assert normalise([None]) == [None]
    assert (normalise.mean, normalise.variance) == pytest.approx((2.0, 0.999))
    # Spread 4 about the mean: variance 0.999 * 0.999 + 0.001 * 4.
    variance = 0.999 * 0.999 + 0.001 * 4
    assert normalise([0.0, None, 4.0]) == pytest.approx(
        [sigmoid(-2 / math.sqrt(variance + floor)), None, sigmoid(2 / math.sqrt(variance + floor))]
    )
    assert normalise.variance == pytest.approx(variance)


def test_ema_sigmoid_stays_in_range_and_never_nan() -> None:
    normalise = EmaSigmoid()
    assert normalise([None, None]) == [None, None]  # nothing seen: no statistics yet
    assert normalise.mean is None
    assert normalise([1.0]) == [0.5]  # one value: variance 0, the value is the mean
    # GO scores are in [0, 2]: batches of them, constant ones among them, stay in [0, 1].
    draw = random.Random(0)
    for size in [1, 2, 8, 8, 3] * 40:
        batch = [draw.choice([0.0, 2.0, draw.uniform(0, 2)]) for _ in range(size)]
        for value in normalise(batch) + normalise([batch[0]] * size):
            assert value is not None and 0.0 <= value <= 1.0 and not math.isnan(value)
