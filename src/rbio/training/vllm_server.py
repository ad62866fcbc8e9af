"""TRL's vLLM server mode inside one training job: a generation server on the job's last GPU(s).

With ``grpo.use_vllm`` and ``grpo.vllm_mode: server`` the job's GPUs are split: the last
``grpo.vllm_tensor_parallel_size`` run ``trl vllm-serve`` on the base model, the others train
(one process each, under accelerate when there are several). TRL's trainer sends prompts to the
server and pushes the new weights to it after every step. The server belongs to the job: it is
started inside the same allocation, polled on its ``/health`` endpoint until it answers (a
server that dies or never answers fails the job with the tail of its log), and stopped when
training ends, on success or error, together with the worker processes vLLM spawns.

In colocate mode (the default) nothing happens here: vLLM runs inside each training process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from rbio.config import ConfigError, GrpoConfig
from rbio.training.multinode import gpus_per_node

log = logging.getLogger(__name__)

SERVER_LOG = "vllm_server.log"  # beside the checkpoints: the server's own output
LOG_TAIL_LINES = 40


class VllmServerError(RuntimeError):
    """The vLLM server could not be started, died, or never answered its health check."""


class TrainingJob(Protocol):
    """What the server needs of a job (``rbio.training.grpo.GrpoJob``, a frozen dataclass)."""

    grpo: GrpoConfig
    base_model: str  # the model the server loads; the trainer pushes its weights every step
    checkpoint_dir: str  # the server log goes here
    processes: int  # the job's GPUs


Job = TypeVar("Job", bound=TrainingJob)


def visible_devices(environ: Mapping[str, str], count: int) -> list[str]:
    """The job's GPUs: ``CUDA_VISIBLE_DEVICES`` as SLURM (or the user) set it, else ``0..count-1``."""
    given = environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if given:
        return [device.strip() for device in given.split(",") if device.strip()]
    return [str(index) for index in range(count)]


def layout_problems(grpo: GrpoConfig, gpus: int) -> list[str]:
    """What a training job on ``gpus`` GPUs (of one node) cannot run of ``grpo``'s vLLM settings:
    checked while the workflow parses (the profile's gpu resource) and when the job starts."""
    server = grpo.vllm_server_gpus
    tensor_parallel = int(grpo["vllm_tensor_parallel_size"])
    if server and gpus < server + 1:
        return [
            f"grpo.vllm_mode is 'server' with grpo.vllm_tensor_parallel_size={server}: the "
            f"training job needs at least {server + 1} GPUs (one or more to train, {server} for "
            f"the server) but has {gpus}. Raise the train_grpo rule's gpu resource, or set "
            "grpo.vllm_mode: colocate."
        ]
    if grpo["use_vllm"] and not server and gpus % tensor_parallel:
        return [
            f"grpo.vllm_tensor_parallel_size={tensor_parallel} does not divide the training "
            f"job's {gpus} GPUs (colocate mode: one vLLM instance per group of GPUs)."
        ]
    return []


def check_training_gpus(grpo: GrpoConfig, resources: Mapping[str, object]) -> None:
    """While the workflow parses: :func:`layout_problems` for the train_grpo resources the
    profiles and command line give (a plain number of GPUs; an expression is judged at job
    start), as a :class:`ConfigError`."""
    try:
        gpus = gpus_per_node(resources)
    except (TypeError, ValueError):
        return
    problems = layout_problems(grpo, gpus)
    if problems:
        raise ConfigError(f"config key 'grpo': {problems[0]}")


def split_devices(devices: Sequence[str], grpo: GrpoConfig) -> tuple[list[str], list[str]]:
    """(training GPUs, server GPUs): the server takes the last ``grpo.vllm_server_gpus``."""
    server = grpo.vllm_server_gpus
    problems = layout_problems(grpo, len(devices))
    if problems:
        raise VllmServerError(f"{problems[0]} (GPUs: {','.join(devices) or 'none'})")
    if server < 1:
        return list(devices), []
    return list(devices[:-server]), list(devices[-server:])


def server_url(grpo: GrpoConfig) -> str:
    """Where the trainer (and the health check) reach the server."""
    return f"http://{grpo['vllm_server_host']}:{grpo['vllm_server_port']}"


def server_command(model: str, grpo: GrpoConfig, python: str = sys.executable) -> list[str]:
    """``trl vllm-serve`` for ``model`` with the config's server settings (TRL's flag names).

    Run through this interpreter's ``trl.cli.main`` so the server uses the job's environment."""
    command = [
        python, "-m", "trl.cli.main", "vllm-serve",
        "--model", model,
        "--host", str(grpo["vllm_server_host"]),
        "--port", str(grpo["vllm_server_port"]),
        "--tensor_parallel_size", str(grpo["vllm_tensor_parallel_size"]),
        "--dtype", "bfloat16" if grpo["bf16"] else "float32",
    ]  # fmt: skip
    if grpo["vllm_max_model_length"] is not None:
        command += ["--max_model_len", str(grpo["vllm_max_model_length"])]
    return command


def wait_until_healthy(
    url: str,
    timeout: float,
    *,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval: float = 2.0,
) -> float:
    """Poll ``url``/health until it answers 200; returns the seconds waited. Raises
    :class:`VllmServerError` (with the server log's tail) when the server process exits first
    or ``timeout`` seconds pass."""
    started = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise VllmServerError(
                f"the vLLM server exited with code {process.returncode} before answering "
                f"{url}/health{_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=interval) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or still loading the model
        if time.monotonic() - started > timeout:
            raise VllmServerError(
                f"the vLLM server did not answer {url}/health within {timeout:.0f} s "
                f"(grpo.vllm_server_timeout){_log_tail(log_path)}"
            )
        time.sleep(interval)


def _log_tail(log_path: Path | None) -> str:
    if log_path is None or not log_path.is_file():
        return ""
    lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return f"; last lines of {log_path}:\n" + "\n".join(lines)


def stop_server(process: subprocess.Popen, grace: float = 30.0) -> None:
    """Stop the server and the workers it spawned (its process group): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running_server(
    command: Sequence[str], devices: Sequence[str], url: str, timeout: float, log_path: Path
) -> Iterator[subprocess.Popen]:
    """Start ``command`` on ``devices``, wait for its health check, and stop it on exit (also
    when the body raises, or the health check fails)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(devices)}
    log.info("starting the vLLM server on GPU(s) %s: %s", ",".join(devices), " ".join(command))
    with open(log_path, "ab") as output:
        # Its own process group: stopping it also stops vLLM's engine and worker processes.
        process = subprocess.Popen(
            list(command), env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        waited = wait_until_healthy(url, timeout, process=process, log_path=log_path)
        log.info("vLLM server healthy at %s after %.0f s", url, waited)
        yield process
    finally:
        stop_server(process)
        log.info("vLLM server stopped (log: %s)", log_path)


@contextlib.contextmanager
def vllm_server_for(job: Job) -> Iterator[Job]:
    """Around a training job: in server mode, start the server on the job's last GPU(s) and
    yield the job with its remaining GPUs as training processes (``CUDA_VISIBLE_DEVICES`` of
    this process, inherited by accelerate's, names only those); otherwise yield ``job``."""
    grpo = job.grpo
    server = grpo.vllm_server_gpus
    if server == 0:
        yield job
        return
    training, serving = split_devices(visible_devices(os.environ, job.processes), grpo)
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    log_path = Path(job.checkpoint_dir) / SERVER_LOG
    command = server_command(job.base_model, grpo)
    with running_server(
        command, serving, server_url(grpo), float(grpo["vllm_server_timeout"]), log_path
    ):
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(training)
        try:
            yield dataclasses.replace(job, processes=len(training))
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
