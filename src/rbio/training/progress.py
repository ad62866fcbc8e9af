"""One readable progress line per logging step of a GRPO job, and no warning spam.

``disable_tqdm=True`` keeps TRL's bar out of the log file (its ``\\r`` redraws make one endless
line), which left a multi-day job's log with no step number and no ETA. :class:`ProgressLog`
writes instead, at every logging step::

    step 12/300 (4%) | 3.1 s/step | ETA 14m | reward 0.42 | http://127.0.0.1:5000/#/experiments/1/runs/ab12

TRL logs a reward's mean as ``None`` for a window where that reward applied to no completion (a
source whose rows it does not score); transformers' MLflow callback then warns four times per
logging step that it dropped the value. Nothing is lost (MLflow has no value to record), so
:func:`silence_none_metric_warnings` filters exactly that message.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transformers import TrainerCallback

from rbio.progress import format_duration
from rbio.tracking import public_uri

log = logging.getLogger(__name__)

# The logger of transformers' MLflowCallback and the start of the warning it gives for None.
MLFLOW_CALLBACK_LOGGER = "transformers.integrations.integration_utils"
NONE_METRIC_WARNING = 'Trainer is attempting to log a value of "None"'
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store


class NoneMetricFilter(logging.Filter):
    """Drops the MLflow callback's warning about a metric whose value is None."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NONE_METRIC_WARNING)


def silence_none_metric_warnings() -> None:
    """Install :class:`NoneMetricFilter` on the MLflow callback's logger (once)."""
    logger = logging.getLogger(MLFLOW_CALLBACK_LOGGER)
    if not any(isinstance(f, NoneMetricFilter) for f in logger.filters):
        logger.addFilter(NoneMetricFilter())


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run: on the tracking server, or where ``mlflow ui`` serves a local
    store.

    >>> run_url("http://mlflow:5000/", "3", "ab12")
    'http://mlflow:5000/#/experiments/3/runs/ab12'
    """
    base = (
        tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
    )
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def progress_line(
    step: int,
    max_steps: int,
    seconds_per_step: float | None,
    reward: float | None = None,
    url: str | None = None,
) -> str:
    """One progress line.

    >>> progress_line(12, 300, 3.1, 0.4171, "http://h/#/experiments/1/runs/r")
    'step 12/300 (4%) | 3.1 s/step | ETA 14m | reward 0.42 | http://h/#/experiments/1/runs/r'
    >>> progress_line(1, 0, None)
    'step 1 | ? s/step | ETA ?'
    """
    parts = [
        f"step {step}/{max_steps} ({100 * step // max_steps}%)" if max_steps else f"step {step}"
    ]
    if seconds_per_step is None:
        parts += ["? s/step", "ETA ?"]
    else:
        rate = f"{seconds_per_step:.3g}" if seconds_per_step < 10 else f"{seconds_per_step:.0f}"
        eta = format_duration(max(0, max_steps - step) * seconds_per_step) if max_steps else "?"
        parts += [f"{rate} s/step", f"ETA {eta}"]
    if reward is not None:
        parts.append(f"reward {reward:.2f}")
    if url:
        parts.append(url)
    return " | ".join(parts)


class ProgressLog(TrainerCallback):
    """Logs :func:`progress_line` at every logging step (main process only). The rate is the
    mean over the steps this process ran (a resumed job: since it resumed)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._started: float | None = None
        self._first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._started, self._first_step = time.perf_counter(), state.global_step
        if state.is_world_process_zero:
            log.info("training to step %d; MLflow run: %s", state.max_steps, self.url or "none")

    def on_log(self, args, state, control, logs=None, **kwargs):
        # The end-of-training summary (train_runtime, train_loss) repeats the last step.
        if not state.is_world_process_zero or "train_runtime" in (logs or {}):
            return
        done = state.global_step - self._first_step
        rate = None
        if self._started is not None and done > 0:
            rate = (time.perf_counter() - self._started) / done
        reward = (logs or {}).get("reward")
        reward = reward if isinstance(reward, int | float) else None
        log.info(progress_line(state.global_step, state.max_steps, rate, reward, self.url))


def progress_callbacks(run_id: str | None) -> list[Any]:
    """The callbacks a job adds for its log: :class:`ProgressLog` pointing at the job's MLflow
    run (``run_id``: None on other processes than the main one); installs the warning filter."""
    silence_none_metric_warnings()
    if run_id is None:
        return [ProgressLog()]
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    # Logged at every step: the address without credentials (rbio.tracking.public_uri).
    address = public_uri(mlflow.get_tracking_uri())
    return [ProgressLog(run_url(address, run.info.experiment_id, run_id))]
