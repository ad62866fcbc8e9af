"""Batched generation, answer parsing in evaluation, and one whole evaluate_model job."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rbio.evaluation.generate import (
    Completions,
    EvaluationInputError,
    EvaluationRequest,
    GenerationSettings,
    generate_hf,
    predictions_frame,
    question_messages,
    read_test_rows,
    run_evaluation,
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
    assert frame["p_yes"].tolist() == [0.5, 0.5, 1.0, 0.0]  # none parsed -> 0.5
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
    assert frame["p_yes"].tolist() == [1.0, 0.5]
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
    assert frame["p_yes"].tolist() == [1.0, 0.5]
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


def test_run_evaluation_writes_predictions_and_metrics(tiny_model_dir, test_parquet, tmp_path):
    out = tmp_path / "eval" / "base" / "loco_k562" / "cot"
    request = EvaluationRequest(
        model_name="base",
        model_dir=str(tiny_model_dir),
        test_parquet=str(test_parquet),
        split="loco_k562",
        prompt_style="cot",
        settings=GenerationSettings(greedy=True, num_samples=2, max_new_tokens=6, batch_size=16),
        n_bootstrap=20,
        predictions_path=str(out / "predictions.parquet"),
        metrics_path=str(out / "metrics.parquet"),
        summary_path=str(out / "evaluation.json"),
        engine="hf",
    )
    metrics = run_evaluation(request)
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == len(pd.read_parquet(test_parquet))
    assert {"pert", "gene", "samples", "sample_answers", "p_yes", "answer"} <= set(predictions)
    assert list(pd.read_parquet(out / "metrics.parquet").columns) == list(METRIC_COLUMNS)
    unparseable = metrics.query("metric == 'unparseable' and stratum == 'all'").value.item()
    assert 0 <= unparseable <= 1
    assert np.isfinite(metrics.query("metric == 'mcc' and stratum == 'all'").value.item())
    sidecar = json.loads((out / "evaluation.json").read_text())
    assert sidecar["questions"] == len(predictions) and sidecar["engine"] == "hf"
