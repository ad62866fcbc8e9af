"""Progress lines in job logs and the silenced None-metric warning."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from rbio import progress
from rbio.training.progress import (
    MLFLOW_CALLBACK_LOGGER,
    ProgressLog,
    progress_line,
    run_url,
    silence_none_metric_warnings,
)


def test_progress_line_has_step_share_rate_eta_reward_and_run():
    line = progress_line(150, 100_000, 2.5, 0.123, "http://h/#/experiments/1/runs/r")
    assert line == (
        "step 150/100000 (0%) | 2.5 s/step | ETA 2d21h | reward 0.12 | "
        "http://h/#/experiments/1/runs/r"
    )
    assert progress_line(300, 300, 31.0) == "step 300/300 (100%) | 31 s/step | ETA 0s"


def test_run_url_points_a_local_store_at_mlflow_ui():
    assert run_url("sqlite:///results/mlflow/mlflow.db", "2", "x") == (
        "http://127.0.0.1:5000/#/experiments/2/runs/x"
    )


def test_callback_logs_one_line_per_logging_step(caplog, monkeypatch):
    clock = iter([100.0, 130.0])
    monkeypatch.setattr("rbio.training.progress.time.perf_counter", lambda: next(clock))
    callback = ProgressLog("URL")
    state = SimpleNamespace(global_step=10, max_steps=110, is_world_process_zero=True)
    with caplog.at_level(logging.INFO, logger="rbio.training.progress"):
        callback.on_train_begin(None, state, None)  # a resumed job: 10 steps already done
        state.global_step = 20
        callback.on_log(None, state, None, logs={"reward": 0.5, "rewards/go/mean": None})
    assert caplog.messages[-1] == "step 20/110 (18%) | 3 s/step | ETA 4m | reward 0.50 | URL"


def test_mlflow_callback_no_longer_warns_about_none_metrics(caplog, monkeypatch, tmp_path):
    """transformers' MLflowCallback warns for each None value TRL logs (a reward that scored no
    completion in the window); the filter drops exactly that warning, not the others."""
    from transformers.integrations import MLflowCallback

    callback = MLflowCallback()
    callback._initialized, callback._async_log = True, False
    callback._ml_flow = SimpleNamespace(log_metrics=lambda **kwargs: None)
    state = SimpleNamespace(is_world_process_zero=True, global_step=1)
    logs = {"reward": 0.1, "rewards/go/mean": None, "odd": "text"}
    logger = logging.getLogger(MLFLOW_CALLBACK_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setattr(logger, "propagate", True)
    with caplog.at_level(logging.WARNING, logger=MLFLOW_CALLBACK_LOGGER):
        callback.on_log(None, state, None, logs)
        assert sum('value of "None"' in m for m in caplog.messages) == 1
        caplog.clear()
        silence_none_metric_warnings()
        callback.on_log(None, state, None, logs)
    assert not any('value of "None"' in m for m in caplog.messages)
    assert any('value of "text"' in m for m in caplog.messages)


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)


def test_bars_in_a_log_file_are_log_lines_without_carriage_returns(not_a_terminal, caplog):
    with caplog.at_level(logging.INFO, logger="rbio.progress"):
        for _ in progress.progress_bar(range(5), desc="generate", mininterval=0):
            pass
    assert caplog.messages and all("\r" not in m for m in caplog.messages)
    assert "generate: 100%" in caplog.messages[-1] and "5/5" in caplog.messages[-1]


def test_library_bars_are_switched_off_in_a_log_file(not_a_terminal, monkeypatch):
    for switch in progress.LIBRARY_BAR_SWITCHES:
        monkeypatch.delenv(switch, raising=False)
    progress.quiet_library_bars()
    import os

    assert all(os.environ[s] == "1" for s in progress.LIBRARY_BAR_SWITCHES)
