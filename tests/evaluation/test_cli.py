"""The rbio command line: ask (single and batched questions), compare, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from rbio.cli import main
from rbio.tracking import log_evaluation_run

QUESTION = (
    "Is a knockdown of PERT1 in K562 cells likely to result in differential expression of GENE2? "
    "The answer is either yes or no."
)


def test_ask_prints_think_and_answer(tiny_model_dir, capsys):
    assert main(["ask", QUESTION, "--model", str(tiny_model_dir), "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert f"Q: {QUESTION}" in out and "think:" in out and "answer:" in out


def test_ask_batches_a_questions_file(tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "questions.txt"
    path.write_text(f"# a comment\n{QUESTION}\n\n{QUESTION.replace('GENE2', 'GENE3')}\n")
    argv = ["ask", "--questions", str(path), "--model", str(tiny_model_dir), "--json"]
    assert main([*argv, "--max-new-tokens", "8", "--style", "cot"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["question"][-40:] for r in records] == [
        QUESTION[-40:],
        QUESTION.replace("GENE2", "GENE3")[-40:],
    ]
    assert all({"think", "answer", "completion"} <= set(r) for r in records)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("does/not/exist/anywhere", "not found"),
        ("EXP", "rbio1-EXP is not downloaded"),
    ],
)
def test_ask_missing_model_is_a_clear_error(model, message, tmp_path, capsys):
    argv = ["ask", QUESTION, "--model", model, "--published-dir", str(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ask_without_question_is_an_error(tiny_model_dir, capsys):
    assert main(["ask", "--model", str(tiny_model_dir)]) == 2
    assert "no question given" in capsys.readouterr().err


def test_compare_prints_and_writes_runs(tmp_path, capsys):
    uri = os.environ["MLFLOW_TRACKING_URI"]
    metrics = pd.DataFrame(
        {
            "metric": ["f1"],
            "value": [0.5],
            "ci_low": [0.4],
            "ci_high": [0.6],
            "stratum": ["all"],
            "n": [3],
        }
    )
    tags = {
        "variant": "EXP",
        "split": "loco_k562",
        "seed": 1,
        "stage": "eval",
        "provenance_digest": "x",
    }
    log_evaluation_run(metrics, tracking_uri=uri, experiment="rbio", tags=tags)
    out = tmp_path / "runs.csv"
    assert main(["compare", "--tag", "stage=eval", "--out", str(out)]) == 0
    assert "EXP" in capsys.readouterr().out
    assert pd.read_csv(out)["f1"].tolist() == [0.5]
    assert main(["compare", "--tag", "oops"]) == 2


def test_an_offline_download_is_one_line_and_exit_status_1(tmp_path, monkeypatch, capsys):
    from botocore.exceptions import EndpointConnectionError

    from rbio.evaluation import published

    def offline(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="https://czi-rbio.s3.amazonaws.com/")

    monkeypatch.setattr(published, "download_checkpoint", offline)
    argv = ["ask", QUESTION, "--model", "EXP", "--download", "--published-dir", str(tmp_path)]
    assert main(argv) == 1
    # Beside the warnings about the question's made-up gene symbols: the error in one line.
    errors = [line for line in capsys.readouterr().err.splitlines() if "warning:" not in line]
    assert len(errors) == 1, errors
    assert errors[0].startswith("rbio ask: error: EndpointConnectionError: Could not connect")


def test_an_unreadable_file_is_one_line_and_exit_status_1(tmp_path, monkeypatch, capsys):
    from rbio import provenance

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(provenance, "read", unreadable)
    assert main(["provenance", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rbio provenance: error: PermissionError: [Errno 13] Permission denied")
    assert len(error.strip().splitlines()) == 1


def _workflow_with_a_run(root: Path) -> Path:
    """A workflow folder whose config names a relative sqlite store holding one run."""
    config = root / "config.yaml"
    config.parent.mkdir(parents=True)
    store = "sqlite:///results/mlflow/mlflow.db"
    config.write_text(f"mlflow:\n  tracking_uri: {store}\n  experiment: paper\n")
    metrics = pd.DataFrame({"metric": ["f1"], "value": [0.5], "ci_low": [0.4],
                            "ci_high": [0.6], "stratum": ["all"], "n": [3]})  # fmt: skip
    tags = {"variant": "EXP", "split": "all", "seed": 1, "stage": "eval", "provenance_digest": "x"}
    uri = f"sqlite:///{root / 'results/mlflow/mlflow.db'}"
    log_evaluation_run(metrics, tracking_uri=uri, experiment="paper", tags=tags)
    return config


def test_compare_finds_the_configs_store_from_another_folder(tmp_path, monkeypatch, capsys):
    config = _workflow_with_a_run(tmp_path / "workflow")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert main(["compare", "--config", str(config)]) == 0
    assert "EXP" in capsys.readouterr().out
    assert not (elsewhere / "results").exists(), "no empty database created here"


def test_compare_says_what_does_not_exist(tmp_path, monkeypatch, capsys):
    config = _workflow_with_a_run(tmp_path / "workflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["compare", "--config", str(config), "--experiment", "rbio"]) == 2
    assert "experiment 'rbio' does not exist" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no config.yaml here: the default store is not guessed
    assert main(["compare", "--tracking-uri", "sqlite:///nowhere/mlflow.db"]) == 2
    assert "no MLflow database at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_ask_warns_about_gene_symbols_hgnc_does_not_approve(tiny_model_dir, tmp_path, capsys):
    table = tmp_path / "aliases.tsv"
    pd.DataFrame(
        {
            "symbol": ["SPARC", "CPAMD8", "ON", "BM40"],
            "approved_symbol": ["SPARC", "CPAMD8", "SPARC", "SPARC"],
        }
    ).to_csv(table, sep="\t", index=False)
    questions = [
        QUESTION.replace("PERT1", "CPAMD8").replace("GENE2", "SPARC"),  # both approved
        QUESTION.replace("PERT1", "CPAMD8").replace("GENE2", "BM40"),  # an alias
        QUESTION.replace("PERT1", "CPAMD9").replace("GENE2", "SPARC"),  # a typo
    ]
    argv = ["ask", *questions, "--model", str(tiny_model_dir), "--max-new-tokens", "4"]
    assert main([*argv, "--genes", str(table)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rbio ask")]
    assert err == [
        "rbio ask: warning: question 2: gene 'BM40' is an alias of SPARC: ask about SPARC",
        "rbio ask: warning: question 3: gene 'CPAMD9' is not an HGNC symbol (did you mean CPAMD8?)",
    ]


def test_an_unparseable_answer_is_shown_on_one_line(tiny_model_dir, monkeypatch, capsys):
    from rbio.evaluation import generate

    class Completions:
        greedy = ["\n" * 250 + "no tags at all" + "\n" * 50]

    monkeypatch.setattr(generate, "generate_hf", lambda *args, **kwargs: Completions())
    assert main(["ask", QUESTION, "--model", str(tiny_model_dir), "--genes", "none.tsv"]) == 0
    out = capsys.readouterr().out
    assert "answer: (unparseable: 'no tags at all')" in out
    assert "\n\n\n" not in out
