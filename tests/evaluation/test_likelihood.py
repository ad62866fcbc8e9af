"""Answer-likelihood scoring: exact P(yes), teacher-forced texts, negation, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from rbio.evaluation import generate
from rbio.evaluation.generate import (
    Completions,
    GenerationSettings,
    predictions_frame,
    question_messages,
    render_prompts,
    score_likelihood,
    score_predictions,
)
from rbio.evaluation.likelihood import (
    AnswerTokens,
    LikelihoodError,
    answer_context,
    likelihood_p_yes,
    teacher_forced_texts,
)
from rbio.evaluation.metrics import LIKELIHOOD_METRICS, weighted_metrics
from rbio.models import load_model_and_tokenizer
from tests.evaluation.conftest import make_test_rows


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model_and_tokenizer(tiny_model_dir)


def _hand_p_yes(model, tokenizer, text: str, yes: list[int], no: list[int]) -> float:
    """P(yes) recomputed without batching or padding: softmax of the last logits in numpy."""
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].double().numpy()
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    return probs[yes].sum() / (probs[yes].sum() + probs[no].sum())


def test_answer_tokens_are_the_first_tokens_of_each_spelling_without_shared_ones(tiny):
    _, tokenizer = tiny
    tokens = AnswerTokens.from_tokenizer(tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    # " YES" and " NO" both start with the byte-level space "Ġ": it is in neither set.
    assert ids("Ġ") not in tokens.yes + tokens.no
    assert {ids(t) for t in ("yes", "Ġyes", "Yes", "ĠYes")} <= set(tokens.yes)
    assert {ids(t) for t in ("no", "Ġno", "No", "ĠNo")} <= set(tokens.no)
    assert not set(tokens.yes) & set(tokens.no)


def test_p_yes_equals_a_hand_computed_softmax_also_when_padded(tiny):
    model, tokenizer = tiny
    rows = make_test_rows(2)
    prompts = render_prompts(tokenizer, question_messages(rows, "cot"))
    traces = [["<think>GENE1 PERT2</think><answer> yes</answer>", "no tag here"], []]
    tokens = AnswerTokens.from_tokenizer(tokenizer)
    # Hand sets, written out: the first tokens of yes/Yes/YES with and without a space.
    yes = [tokenizer.convert_tokens_to_ids(t) for t in ("yes", "Ġyes", "Yes", "ĠYes", "Y")]
    no = [tokenizer.convert_tokens_to_ids(t) for t in ("no", "Ġno", "No", "ĠNo", "N")]
    assert sorted(yes) == list(tokens.yes) and sorted(no) == list(tokens.no)
    texts = [
        prompts[0] + "<think>GENE1 PERT2</think><answer>",
        prompts[0] + "no tag here<answer>",
        prompts[1] + "<answer>",
    ]
    hand = [_hand_p_yes(model, tokenizer, text, yes, no) for text in texts]
    # Different lengths in one batch: left padding must not change a text's P(yes).
    scored = likelihood_p_yes(model, tokenizer, prompts, traces, batch_size=3)
    assert scored == pytest.approx([(hand[0] + hand[1]) / 2, hand[2]], abs=1e-6)
    assert not np.allclose(hand, hand[0])  # the texts do give different answers


def test_a_tokenizer_without_distinct_answer_tokens_is_refused():
    class SameStart:
        def encode(self, text, add_special_tokens=False):
            return [7, 8]

    with pytest.raises(LikelihoodError, match="yes from no"):
        AnswerTokens.from_tokenizer(SameStart())


@pytest.mark.parametrize(
    ("completion", "context"),
    [
        ("<think>a</think><answer>yes</answer>", "<think>a</think><answer>"),
        ("<think>a</think><Answer> no", "<think>a</think><Answer>"),
        ("<answer>yes</answer><answer>no</answer>", "<answer>"),  # the first tag, as parsed
        ("<think>a</think></answer>yes", "<think>a</think></answer>yes<answer>"),
        ("<think>cut off", "<think>cut off<answer>"),
        ("", "<answer>"),
    ],
)
def test_teacher_forced_context_ends_at_the_first_answer_tag(completion, context):
    assert answer_context(completion) == context
    assert teacher_forced_texts("P:", [completion]) == ["P:" + context]


def test_without_traces_the_prompt_is_followed_by_the_answer_tag():
    assert teacher_forced_texts("P:", []) == ["P:<answer>"]


def test_traces_are_the_samples_or_else_the_greedy_completion(tiny):
    model, tokenizer = tiny
    conversations = question_messages(make_test_rows(2), "nocot")
    prompts = render_prompts(tokenizer, conversations)
    completions = Completions(greedy=["g0", None], samples=[["a", "b"], ["c", "d"]])
    sampled = GenerationSettings(greedy=True, num_samples=2, batch_size=8)
    greedy_only = GenerationSettings(greedy=True, num_samples=0, batch_size=8)
    expected_sampled = likelihood_p_yes(model, tokenizer, prompts, [["a", "b"], ["c", "d"]], 8)
    expected_greedy = likelihood_p_yes(model, tokenizer, prompts, [["g0"], []], 8)
    assert score_likelihood(model, tokenizer, conversations, completions, sampled) == (
        pytest.approx(expected_sampled)
    )
    assert score_likelihood(model, tokenizer, conversations, completions, greedy_only) == (
        pytest.approx(expected_greedy)
    )


def _likelihood_frame(likelihood, labels):
    rows = make_test_rows(len(labels))
    rows["label"] = labels
    completions = Completions(["<answer>no</answer>"] * len(labels), [[]] * len(labels))
    settings = GenerationSettings(greedy=True, num_samples=0)
    return predictions_frame(rows, completions, settings, likelihood=np.asarray(likelihood))


def test_a_negated_question_flips_p_yes_into_p_de(monkeypatch):
    plain = _likelihood_frame([0.9, 0.2], [1, 0])
    assert plain["score_likelihood"].tolist() == pytest.approx([0.9, 0.2])
    monkeypatch.setattr(generate, "EVALUATION_TEMPLATE", 7)  # "...leave ... unchanged?"
    negated = _likelihood_frame([0.9, 0.2], [1, 0])
    assert negated["p_yes_likelihood"].tolist() == pytest.approx([0.9, 0.2])
    assert negated["score_likelihood"].tolist() == pytest.approx([0.1, 0.8])
    assert "unchanged" in question_messages(make_test_rows(1), "nocot")[0][1]["content"]


def test_likelihood_metrics_are_reported_beside_the_sampled_ones():
    labels = [1, 0, 1, 0, 0, 1, 0, 0]
    likelihood = [0.9, 0.1, 0.4, 0.6, 0.3, 0.8, 0.2, 0.5]
    frame = _likelihood_frame(likelihood, labels)
    metrics = score_predictions(frame, n_bootstrap=20, seed=0).query("stratum == 'all'")
    value = metrics.set_index(["protocol", "metric"])
    for protocol in ("conservative", "strict"):
        assert {*LIKELIHOOD_METRICS} <= set(value.loc[protocol].index)
    assert value.loc[("conservative", "auroc_likelihood"), "value"] == pytest.approx(
        roc_auc_score(labels, likelihood)
    )
    assert value.loc[("conservative", "auroc"), "value"] == 0.5  # every sampled answer is "no"
    assert np.isfinite(value.loc[("conservative", "auroc_likelihood"), "ci_low"])
    without = _likelihood_frame(likelihood, labels).drop(columns="score_likelihood")
    assert not set(LIKELIHOOD_METRICS) & set(score_predictions(without, 0, 0)["metric"])


def test_weighted_likelihood_aurocs_equal_the_point_values_with_unit_weights():
    rows = make_test_rows(40, seed=3)
    rng = np.random.default_rng(0)
    label, score = rows["label"].to_numpy(int), rng.random(40)
    n_perts = rows["pert"].nunique()
    result = weighted_metrics(
        label, label, label.astype(float), rows["gene"].to_numpy(), rows["pert"].to_numpy(),
        np.ones(n_perts), extra_scores={"likelihood": score},
    )  # fmt: skip
    assert result["auroc_likelihood"][0] == pytest.approx(roc_auc_score(label, score))
    genes = pd.DataFrame({"label": label, "score": score, "gene": rows["gene"]})
    per_gene = [
        roc_auc_score(g["label"], g["score"])
        for _, g in genes.groupby("gene")
        if g["label"].nunique() == 2
    ]
    assert result["auroc_per_gene_likelihood"][0] == pytest.approx(np.mean(per_gene))
