from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from rouge_score import rouge_scorer

from rbio.rewards.go import GoKeywordReward, GoLikelihoodReward, GoRougeReward

GENE_INFO = (
    "<gene_info>TP53 binds DNA (DNA binding) in the Nucleus and drives the apoptotic process. "
    "MDM2 is an E3 ligase.</gene_info><think>so</think><answer>yes</answer>"
)


def _row(**overrides: Any) -> dict[str, list[Any]]:
    row = {
        "pert": ["TP53"],
        "gene": ["MDM2"],
        "pert_go_terms": [["DNA binding", "nucleus", "apoptotic process", "cytosol"]],
        "gene_go_terms": [["ubiquitin protein ligase activity", "nucleus"]],
        "source": ["go"],
    }
    row.update({key: [value] for key, value in overrides.items()})
    return row


def test_keyword_exact_shares() -> None:
    reward = GoKeywordReward()
    assert reward.__name__ == "go_keyword"
    # TP53: 3 of 4 terms; MDM2: 1 of 2 ("nucleus")
    assert reward([GENE_INFO], **_row()) == [(3 / 4 + 1 / 2) / 2]


def test_keyword_only_gene_info_counts_and_whitespace_is_collapsed() -> None:
    reward = GoKeywordReward()
    outside = "<think>DNA binding nucleus</think><gene_info>nothing</gene_info>"
    assert reward([outside], **_row(gene_go_terms=[])) == [0.0]
    spaced = "<gene_info>DNA\n  BINDING</gene_info>"
    assert reward(
        [spaced], **_row(pert_go_terms=["DNA binding", "dna binding"], gene_go_terms=[])
    ) == [1.0]
    assert reward(["no gene_info at all"], **_row()) == [0.0]


def test_keyword_none_and_counted_when_unannotated() -> None:
    reward = GoKeywordReward()
    rows = {
        "pert": ["TP53", "NEWGENE1", "TP53"],
        "gene": ["MDM2", "NEWGENE2", "MDM2"],
        "pert_go_terms": [["nucleus"], [], ["nucleus"]],
        "gene_go_terms": [[], None, []],
        "source": ["go_c", "go_f", "exp"],
    }
    logged: list[tuple[str, float]] = []
    scores = reward(
        [GENE_INFO] * 3, **rows, log_metric=lambda name, value: logged.append((name, value))
    )
    assert scores == [1.0, None, None]  # row 2: no terms; row 3: not a GO source
    assert reward.unannotated.rows == 1
    assert reward.unannotated.genes == {"MDM2": 1, "NEWGENE1": 1, "NEWGENE2": 1}
    assert logged == [("go_keyword/unannotated_share", 0.5)]


def test_rows_without_source_column_use_terms() -> None:
    rows = {"pert_go_terms": [["nucleus"], []], "gene_go_terms": [[], []]}
    reward = GoKeywordReward()
    assert reward([GENE_INFO, GENE_INFO], **rows) == [1.0, None]
    assert reward.unannotated.genes == {"<unknown>": 3}


def test_missing_terms_column_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="pert_go_terms"):
        GoKeywordReward()(["x"], gene_go_terms=[[]])


def _reference_rouge(gene_info: str, terms_per_gene: list[list[str]]) -> float:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    per_gene = []
    for terms in terms_per_gene:
        scores = scorer.score(", ".join(terms), gene_info)
        per_gene.append(sum(scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")) / 3)
    return sum(per_gene) / len(per_gene)


def test_rouge_equals_rouge_score_per_gene_mean() -> None:
    row = _row()
    gene_info = GENE_INFO.split("<gene_info>")[1].split("</gene_info>")[0]
    expected = _reference_rouge(gene_info, [row["pert_go_terms"][0], row["gene_go_terms"][0]])
    (score,) = GoRougeReward()([GENE_INFO], **row)
    assert score is not None
    assert abs(score - expected) < 1e-12
    assert GoRougeReward()(
        ["<gene_info>DNA binding</gene_info>"],
        **_row(pert_go_terms=["DNA binding"], gene_go_terms=[]),
    ) == [1.0]
    assert GoRougeReward()(["<think>x</think>"], **_row()) == [0.0]


def test_rewards_are_picklable_and_keep_their_name() -> None:
    for reward in (GoKeywordReward(), GoRougeReward()):
        clone = pickle.loads(pickle.dumps(reward))
        assert clone.__name__ == reward.__name__
        assert clone([GENE_INFO], **_row()) == reward([GENE_INFO], **_row())


def test_likelihood_finite_negative_and_none(tiny_model: Any, tiny_tokenizer: Any) -> None:
    reward = GoLikelihoodReward(tiny_model, tiny_tokenizer)
    assert reward.__name__ == "go_likelihood"
    rows = {
        "pert": ["TP53", "TP53", "X", "TP53"],
        "gene": ["MDM2", "MDM2", "Y", "MDM2"],
        "pert_go_terms": [["DNA binding", "nucleus"], ["DNA binding"], [], ["nucleus"]],
        "gene_go_terms": [["cytosol"], [], [], []],
        "source": ["go", "go", "go", "mlp"],
    }
    completions = [GENE_INFO, "<gene_info>MDM2 ligase</gene_info>", GENE_INFO, GENE_INFO]
    scores = reward(completions, **rows)
    assert scores[2] is None and scores[3] is None
    for score in scores[:2]:
        assert score is not None and math.isfinite(score) and score < 0
    assert reward.unannotated.rows == 1


def test_likelihood_matches_direct_computation(tiny_model: Any, tiny_tokenizer: Any) -> None:
    import torch

    reward = GoLikelihoodReward(tiny_model, tiny_tokenizer, batch_size=4)
    gene_infos = ["TP53 binds DNA.", "A much longer description of TP53 and its many roles.", ""]
    completions = [f"<gene_info>{text}</gene_info>" for text in gene_infos]
    terms = [["DNA binding", "nucleus"], ["apoptotic process"], ["cytosol", "nucleus", "x"]]
    scores = reward(
        completions,
        pert=["TP53"] * 3,
        gene=["MDM2"] * 3,
        pert_go_terms=terms,
        gene_go_terms=[[]] * 3,
    )
    for text, gene_terms, score in zip(gene_infos, terms, scores, strict=True):
        context = tiny_tokenizer(text + "\n", add_special_tokens=False)["input_ids"] if text else []
        sentence = f"TP53 is associated with: {', '.join(gene_terms)}."
        target = tiny_tokenizer(sentence, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + target])
        with torch.no_grad():
            log_probs = torch.log_softmax(tiny_model(input_ids=ids).logits[0].float(), -1)
        first = max(len(context), 1)
        expected = torch.stack(
            [log_probs[q - 1, ids[0, q]] for q in range(first, ids.shape[1])]
        ).mean()
        assert score == pytest.approx(float(expected), abs=1e-5)
    # padding and batching do not change the values
    one_by_one = GoLikelihoodReward(tiny_model, tiny_tokenizer, batch_size=1)(
        completions,
        pert=["TP53"] * 3,
        gene=["MDM2"] * 3,
        pert_go_terms=terms,
        gene_go_terms=[[]] * 3,
    )
    assert one_by_one == pytest.approx(scores, abs=1e-5)


def test_likelihood_depends_on_gene_info_unless_disabled(
    tiny_model: Any, tiny_tokenizer: Any
) -> None:
    rows = {"pert_go_terms": [["nucleus"]] * 2, "gene_go_terms": [[]] * 2, "pert": ["TP53"] * 2}
    completions = ["<gene_info>TP53 nucleus</gene_info>", "<gene_info>cytosol kinase</gene_info>"]
    conditioned = GoLikelihoodReward(tiny_model, tiny_tokenizer)(completions, **rows)
    assert conditioned[0] != conditioned[1]
    plain = GoLikelihoodReward(tiny_model, tiny_tokenizer, condition_on_gene_info=False)
    unconditioned = plain(completions, **rows)
    assert unconditioned[0] == pytest.approx(unconditioned[1], abs=1e-6)


def test_likelihood_restores_mode_and_pickles(tiny_model: Any, tiny_tokenizer: Any) -> None:
    reward = GoLikelihoodReward(tiny_model, tiny_tokenizer)
    tiny_model.train()
    try:
        reward([GENE_INFO], **_row())
        assert tiny_model.training
    finally:
        tiny_model.eval()
    clone = pickle.loads(pickle.dumps(reward))
    assert clone([GENE_INFO], **_row()) == pytest.approx(reward([GENE_INFO], **_row()), abs=1e-6)


def test_likelihood_rejects_bad_setup(tiny_tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="model and its tokenizer"):
        GoLikelihoodReward(None, tiny_tokenizer)
    with pytest.raises(ValueError, match="terms"):
        GoLikelihoodReward(object(), tiny_tokenizer, template="{gene}")
