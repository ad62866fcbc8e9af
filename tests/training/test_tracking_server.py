"""The cluster tracking setup for real: ``mlflow server`` (started as ``rbio tracking-server``
starts it) on PostgreSQL with an S3 (moto) artifact store, written to by the project's own
logging code from many processes at once, and with credentials in the tracking URI.

Marked ``tracking_server`` (``make test-tracking-server``, run by ``.ci/run``): the stack takes a
minute or more to start on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pandas as pd
import pytest

from rbio.tracking import log_evaluation_run, run_tags
from rbio.training.grpo import _log_final, open_mlflow_run, train_grpo
from tests.tracking_server import s3_keys, tracking_server  # noqa: F401 (the fixture)
from tests.training.conftest import grpo_job, stand_in_rewards, tiny_config

pytestmark = pytest.mark.tracking_server

WRITERS = 16
STEPS = 5


def summary_of(index: int) -> dict:
    return {"reward_failures": {"answer": index}, "seconds_per_step": 1.0 + index, "steps": STEPS}


def metrics_of(index: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["f1", "mcc"],
            "stratum": ["all", "all"],
            "value": [index / 100, index / 200],
            "ci_low": [index / 100 - 0.01, index / 200 - 0.01],
            "ci_high": [index / 100 + 0.01, index / 200 + 0.01],
        }
    )


def _writer(index: int, folder: Path, uri: str, experiment: str, barrier, results) -> None:
    """One job: a GRPO run as train_grpo makes it (per-step metrics as the Trainer's MLflow
    callback logs them into MLFLOW_RUN_ID, final metrics and the summary artifact), then an
    evaluation run as the evaluation rules log it."""
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment
    job = grpo_job(tiny_config(), folder, folder, folder / str(index), prompt_dirs={}, seed=index)
    barrier.wait()  # every first contact at once: the experiment does not exist yet
    try:
        run_id = open_mlflow_run(job)
        with mlflow.start_run(run_id=run_id):
            for step in range(1, STEPS + 1):
                mlflow.log_metrics({"reward": index + step / 10, "loss": 1 / step}, step=step)
        _log_final(run_id, summary_of(index))
        tags = run_tags(
            variant=f"W{index}",
            split="loco_k562",
            seed=index,
            stage="eval",
            provenance_tags={"provenance_digest": f"digest{index}"},
        )
        eval_id = log_evaluation_run(
            metrics_of(index),
            tracking_uri=uri,
            experiment=experiment,
            tags=tags,
            params={"writer": index},
            run_name=f"eval W{index}",
        )
        results.put(("ok", index, run_id, eval_id))
    except Exception as error:  # reported to the test, which names it
        results.put(("failed", index, repr(error), None))


def test_concurrent_writers_lose_no_run_metric_or_artifact(tracking_server, tmp_path):  # noqa: F811
    import mlflow

    experiment = "stress"
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WRITERS), context.Queue()
    workers = [
        context.Process(
            target=_writer,
            args=(index, tmp_path, tracking_server.uri, experiment, barrier, results),
        )
        for index in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert [status for status, *_ in outcomes] == ["ok"] * WRITERS, outcomes

    client = mlflow.MlflowClient(tracking_uri=tracking_server.uri)
    found = client.get_experiment_by_name(experiment)
    runs = {run.info.run_id: run for run in client.search_runs([found.experiment_id])}
    assert len(runs) == 2 * WRITERS
    artifacts = set(s3_keys(tracking_server))
    for _, index, run_id, eval_id in outcomes:
        train = runs[run_id]
        assert train.info.status == "FINISHED"
        history = client.get_metric_history(run_id, "reward")
        assert sorted((m.step, m.value) for m in history) == [
            (step, index + step / 10) for step in range(1, STEPS + 1)
        ]
        assert train.data.metrics["reward_failures_total"] == index
        assert train.data.metrics["seconds_per_step"] == 1.0 + index
        # The artifact went through the server into the bucket, and comes back whole.
        key = f"artifacts/{found.experiment_id}/{run_id}/artifacts/training_summary.json"
        assert key in artifacts
        fetched = client.download_artifacts(run_id, "training_summary.json", str(tmp_path))
        assert json.loads(Path(fetched).read_text()) == summary_of(index)

        evaluation = runs[eval_id]
        assert evaluation.info.status == "FINISHED"
        assert evaluation.data.tags["provenance_digest"] == f"digest{index}"
        assert evaluation.data.params == {"writer": str(index)}
        assert evaluation.data.metrics["f1"] == pytest.approx(index / 100)
        assert evaluation.data.metrics["mcc/ci_high"] == pytest.approx(index / 200 + 0.01)


def test_credentials_in_the_uri_reach_no_output_or_log(
    tracking_server,  # noqa: F811
    tmp_path,
    tiny_model_dir,
    exp_prompts,
    monkeypatch,
    capfd,
    caplog,
):
    import mlflow

    secret = "pw-never-written"
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", tracking_server.uri.replace("//", f"//rbio:{secret}@")
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "credentials")
    cfg = tiny_config(max_steps=2, save_steps=1, logging_steps=1)
    job = grpo_job(cfg, tiny_model_dir, exp_prompts, tmp_path)
    train_grpo(job, reward_factory=stand_in_rewards)

    record = json.loads((Path(job.out_dir) / "run.json").read_text())
    assert record["tracking_uri"] == tracking_server.uri
    written = [*Path(job.out_dir).rglob("*"), *Path(job.checkpoint_dir).rglob("*")]
    leaks = [path for path in written if path.is_file() and secret.encode() in path.read_bytes()]
    assert not leaks
    printed = capfd.readouterr()
    assert secret not in printed.out + printed.err + caplog.text

    run = mlflow.MlflowClient(tracking_uri=tracking_server.uri).get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "train"
