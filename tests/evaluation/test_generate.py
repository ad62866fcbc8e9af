"""Batched generation, answer parsing in evaluation, and one whole evaluate_model job."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rbio.evaluation.generate import (
    Completions,
    EngineUnavailableError,
    EvaluationInputError,
    EvaluationRequest,
    GenerationSettings,
    generate_hf,
    per_question_sampling,
    predictions_frame,
    question_messages,
    read_test_rows,
    run_evaluation,
    score_predictions,
)
from rbio.evaluation.metrics import METRIC_COLUMNS
from rbio.models import load_model_and_tokenizer
from rbio.rewards.parsing import parse_answer
from tests.evaluation.conftest import make_test_rows

# Completions a model might write, and what evaluation must make of them.
ADVERSARIAL = [
    ("<think>x</think><answer>yes</answer>", "yes"),
    ("<think>x</think><answer> **No.** </answer>", "no"),
    ("<answer>YES</answer>", "yes"),
    ("<think>it could be yes</think><answer>no</answer>", "no"),
    ("<answer>yes and no</answer>", None),
    ("<answer>yes</answer><answer>no</answer>", None),
    ("<answer>yes", None),
    ("yes", None),
    ("", None),
    ("<answer></answer>", None),
    ("<answer>nope</answer>", None),
    ("</answer>yes<answer>", None),
    ("<answer><think>no</think>yes</answer>", None),
    ("<answer>ｙｅｓ</answer>", "yes"),
    (None, None),  # no completion at all
]


@pytest.mark.parametrize(("text", "expected"), ADVERSARIAL)
def test_adversarial_answers_parse_as_expected(text, expected):
    assert parse_answer(text) == expected


def _frame(greedy, samples, labels, settings):
    rows = make_test_rows(len(labels))
    rows["label"] = labels
    return predictions_frame(rows, Completions(greedy, samples), settings, parse_answer)


def test_unparseable_greedy_answer_is_scored_no_and_counted():
    yes, no, junk = "<answer>yes</answer>", "<answer>no</answer>", "I think so"
    settings = GenerationSettings(greedy=True, num_samples=2)
    frame = _frame(
        [yes, junk, junk, no],
        [[yes, no], [junk, junk], [yes, yes], [no, junk]],
        [1, 1, 0, 0],
        settings,
    )
    assert frame["answer"].tolist() == ["yes", None, None, "no"]
    assert frame["predicted"].tolist() == [1, 0, 0, 0]  # unparseable -> "no"
    # Conservative: an unreadable sample is a "no" in P(yes) too, as in the hard metrics.
    assert frame["p_yes"].tolist() == [0.5, 0.0, 1.0, 0.0]
    assert frame["unparseable"].tolist() == [False, True, True, False]
    assert frame["unparseable_samples"].tolist() == [0.0, 1.0, 0.0, 0.5]


def test_missing_completions_are_unparseable_whatever_the_parser():
    def strict_parser(text: str) -> str | None:  # a parser that cannot take None
        return parse_answer(text.strip())

    yes = "<answer>yes</answer>"
    rows = make_test_rows(2)
    settings = GenerationSettings(greedy=True, num_samples=2)
    completions = Completions([None, yes], [[yes, None], [None, None]])
    frame = predictions_frame(rows, completions, settings, strict_parser)
    assert frame["greedy_answer"].tolist() == [None, "yes"]
    assert frame["sample_answers"].tolist() == [["yes", None], [None, None]]
    assert frame["p_yes"].tolist() == [0.5, 0.0]
    assert frame["unparseable_samples"].tolist() == [0.5, 1.0]
    assert frame["predicted"].tolist() == [0, 1]


def test_majority_of_samples_without_greedy():
    yes, no = "<answer>yes</answer>", "<answer>no</answer>"
    settings = GenerationSettings(greedy=False, num_samples=3)
    frame = _frame(
        [None] * 3, [[yes, yes, no], [yes, no, "?"], ["?", "?", "?"]], [1, 1, 0], settings
    )
    assert frame["answer"].tolist() == ["yes", "no", None]  # a tie is "no"
    assert frame["predicted"].tolist() == [1, 0, 0]  # nothing parsed -> "no"


def test_greedy_only_scores_with_the_greedy_answer():
    settings = GenerationSettings(greedy=True, num_samples=0)
    frame = _frame(["<answer>yes</answer>", "x"], [[], []], [0, 1], settings)
    assert frame["p_yes"].tolist() == [1.0, 0.0]
    assert frame["predicted"].tolist() == [1, 0]


def test_nothing_to_score_is_a_config_error():
    with pytest.raises(EvaluationInputError, match="evaluation"):
        GenerationSettings(greedy=False, num_samples=0)


def test_batched_generation_matches_one_at_a_time_greedy(tiny_model_dir):
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir)
    rows = make_test_rows(6)
    conversations = question_messages(rows, "nocot")
    settings = GenerationSettings(greedy=True, num_samples=2, max_new_tokens=8, batch_size=4)
    batched = generate_hf(model, tokenizer, conversations, settings, progress=False)
    single = GenerationSettings(greedy=True, num_samples=0, max_new_tokens=8, batch_size=1)
    one_by_one = [
        generate_hf(model, tokenizer, [c], single, progress=False).greedy[0] for c in conversations
    ]
    assert batched.greedy == one_by_one  # left padding does not change greedy answers
    assert all(len(samples) == 2 for samples in batched.samples)


def test_read_test_rows_names_the_missing_column(tmp_path):
    path = tmp_path / "test.parquet"
    make_test_rows(4).drop(columns=["pert_seen_elsewhere"]).to_parquet(path)
    with pytest.raises(EvaluationInputError, match="pert_seen_elsewhere"):
        read_test_rows(path)


def base_model_request(model_dir, test_parquet, out, engine: str = "hf") -> EvaluationRequest:
    """The request evaluate_model makes for the base model on loco_k562 with the cot prompt."""
    return EvaluationRequest(
        model_name="base",
        model_dir=str(model_dir),
        test_parquet=str(test_parquet),
        split="loco_k562",
        prompt_style="cot",
        settings=GenerationSettings(greedy=True, num_samples=2, max_new_tokens=6, batch_size=16),
        n_bootstrap=20,
        predictions_path=str(out / "predictions.parquet"),
        metrics_path=str(out / "metrics.parquet"),
        summary_path=str(out / "evaluation.json"),
        engine=engine,
    )


def test_run_evaluation_writes_predictions_and_metrics(tiny_model_dir, test_parquet, tmp_path):
    out = tmp_path / "eval" / "base" / "loco_k562" / "cot"
    request = base_model_request(tiny_model_dir, test_parquet, out)
    metrics = run_evaluation(request)
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == len(pd.read_parquet(test_parquet))
    assert {"pert", "gene", "samples", "sample_answers", "p_yes", "answer"} <= set(predictions)
    # Likelihood scoring is on by default: its P(yes) and metrics sit beside the sampled ones.
    assert predictions["p_yes_likelihood"].between(0, 1).all()
    assert predictions["p_yes_likelihood"].nunique() > 1
    assert list(pd.read_parquet(out / "metrics.parquet").columns) == list(METRIC_COLUMNS)
    unparseable = metrics.query(
        "metric == 'unparseable' and stratum == 'all' and protocol == 'conservative'"
    ).value.item()
    assert 0 <= unparseable <= 1
    everything = metrics.query("stratum == 'all'").set_index(["protocol", "metric"])["value"]
    assert np.isfinite(everything["conservative", "mcc"])
    assert everything["conservative", "coverage"] == 1.0
    for protocol in ("conservative", "strict"):
        assert {"auroc_likelihood", "auroc_per_gene_likelihood"} <= set(everything[protocol].index)
    assert np.isfinite(everything["conservative", "auroc_likelihood"])
    assert 0 <= everything["strict", "coverage"] <= 1
    sidecar = json.loads((out / "evaluation.json").read_text())
    assert sidecar["questions"] == len(predictions) and sidecar["engine"] == "hf"
    assert sidecar["likelihood_seconds"] > 0


def test_protocols_on_a_constructed_frame():
    # Rows 0-1 answer "Yes.": lenient yes, strict unreadable (dropped); rows 2-5 answer bare.
    yes_dot, yes, no = "<answer>Yes.</answer>", "<answer>yes</answer>", "<answer>no</answer>"
    settings = GenerationSettings(greedy=True, num_samples=0)
    frame = _frame([yes_dot, yes_dot, no, yes, yes, no], [[]] * 6, [1, 1, 0, 0, 1, 0], settings)
    assert frame["strict_kept"].tolist() == [False, False, True, True, True, True]
    metrics = score_predictions(frame, n_bootstrap=0, seed=0).query("stratum == 'all'")
    value = metrics.set_index(["protocol", "metric"])["value"]
    n = metrics.groupby("protocol")["n"].first()
    assert n["conservative"] == 6 and value["conservative", "coverage"] == 1.0
    assert [value["conservative", c] for c in ("tp", "fp", "tn", "fn")] == [3, 1, 2, 0]
    assert n["strict"] == 4 and value["strict", "coverage"] == pytest.approx(4 / 6)
    assert [value["strict", c] for c in ("tp", "fp", "tn", "fn")] == [1, 1, 2, 0]


def test_unreadable_is_no_for_hard_answer_and_p_yes_alike_under_conservative():
    junk = "I think so"
    settings = GenerationSettings(greedy=True, num_samples=0)
    frame = _frame([junk, "<answer>yes</answer>"], [[], []], [1, 0], settings)
    # Same "no" in the ranking as in the hard metrics (it was 0.5 for the AUROC before).
    assert frame["score"].tolist() == [0.0, 1.0] and frame["predicted"].tolist() == [0, 1]
    assert frame["strict_kept"].tolist() == [False, True]


def test_sampled_p_yes_per_protocol():
    yes, no, yes_dot = "<answer>yes</answer>", "<answer>no</answer>", "<answer>Yes.</answer>"
    settings = GenerationSettings(greedy=False, num_samples=4)
    samples = [[yes, no, yes_dot, "?"], [yes_dot, yes_dot, "?", "?"], ["?"] * 4]
    frame = _frame([None] * 3, samples, [1, 1, 0], settings)
    # Conservative: share of "yes" among all samples (lenient read), unreadable = "no".
    assert frame["p_yes"].tolist() == [0.5, 0.5, 0.0]
    assert frame["answer"].tolist() == ["no", "no", None]  # 2 of 4 is a tie: "no"
    # Strict: share among the readable samples; kept when at least one sample is readable.
    assert frame["strict_p_yes"].tolist()[:1] == [0.5]
    assert frame["strict_kept"].tolist() == [True, False, False]
    assert np.isnan(frame["strict_score"].tolist()[1:]).all()


def test_vllm_samples_each_question_with_its_own_seed():
    # vLLM's SamplingParams takes keyword arguments; a dict stands in for it on the CPU.
    settings = GenerationSettings(greedy=False, num_samples=5, temperature=0.7, seed=42)
    params = per_question_sampling(settings, 3, dict)
    assert [p["seed"] for p in params] == [42, 43, 44]
    assert all(
        {k: v for k, v in p.items() if k != "seed"}
        == {"n": 5, "temperature": 0.7, "top_p": 1.0, "top_k": -1, "max_tokens": 1024}
        for p in params
    )


def test_the_vllm_engine_is_chosen_by_config_and_fails_clearly_where_it_cannot_run(
    tiny_model_dir, test_parquet, tmp_path, monkeypatch
):
    import importlib.util

    import torch

    request = base_model_request(tiny_model_dir, test_parquet, tmp_path, engine="vllm")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm" else find_spec(name, *a),
    )
    with pytest.raises(EngineUnavailableError, match="'evaluation.engine' is vllm but the vllm"):
        run_evaluation(request)
    # Installed but no GPU: the other half of the message, still before any model is loaded.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineUnavailableError, match="no CUDA device: set evaluation.engine: hf"):
        run_evaluation(request)
    assert not (tmp_path / "predictions.parquet").exists()
