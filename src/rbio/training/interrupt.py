"""Stopping a training job cleanly when it is told to, and owning the worker processes it starts.

A cancelled or preempted SLURM job gets SIGTERM (and SIGKILL ``KillWait`` seconds later); a job
near its time limit stops itself (``rbio.training.checkpoints``: it reads its end time), and a user
may send SIGUSR1. The profile asks for no ``--signal``: under the plugin's ``sbatch --wrap``, it
would reach the batch shell or Snakemake, not this process (profiles/README.md). Either one, caught by
``StopRequest``, makes the training save a checkpoint at the end of the current step and exit with a
non-zero code (``TrainingInterrupted``), so that Snakemake retries the job (or the user reruns it)
and the retry resumes from that checkpoint instead of from the last periodic one.

Multi-GPU jobs train in ``accelerate launch`` workers. ``run_workers`` starts the launcher in its
own session, forwards the signals to the workers and waits for them, so that stopping the rule
stops (and checkpoints) its workers instead of leaving them running, and a rule process killed
outright takes its launcher with it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

# The signals that mean "save and stop": SLURM's warning before the time limit, and termination.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# What the rule process passes on to its workers (Ctrl-C of a local run too).
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class TrainingInterrupted(SystemExit):
    """Training stopped on a signal after saving a checkpoint; exits 128 + the signal number (the
    shell's convention for a process ended by that signal), a failure for Snakemake."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class StopRequest:
    """While entered, ``STOP_SIGNALS`` set ``signum`` instead of ending the process; the previous
    handlers come back on exit (the main thread only, as Python's ``signal`` requires)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.warning("received signal %d: stopping after the current step", signum)
        self.signum = signum

    def __enter__(self) -> StopRequest:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the rule process dies, even by SIGKILL (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _workers(launcher: subprocess.Popen) -> list:
    """The launcher's child processes: the training workers ``accelerate launch`` started."""
    import psutil

    try:
        return psutil.Process(launcher.pid).children()
    except psutil.NoSuchProcess:
        return []


def run_workers(command: Sequence[str]) -> None:
    """Run the worker launcher ``command`` and wait; raise ``CalledProcessError`` if it fails.

    A signal in ``FORWARDED_SIGNALS`` is sent on to the workers themselves, not to the launcher:
    torch's elastic agent inside ``accelerate launch`` would answer SIGTERM by killing its workers
    30 s later (too little to save a 3B model) and dies from SIGUSR1. The workers save, exit
    non-zero, and the launcher then ends on its own.
    """
    launcher = subprocess.Popen(  # noqa: PLW1509 (preexec_fn: the prctl call only)
        list(command), start_new_session=True, preexec_fn=_die_with_parent
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        workers = _workers(launcher)
        log.warning("received signal %d: passing it to %d worker(s)", signum, len(workers))
        for worker in workers:  # Ctrl-C too: save and stop (workers do not catch SIGINT)
            worker.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)
        if not workers:  # still starting: nothing to save yet, stop the whole session
            os.killpg(launcher.pid, signal.SIGTERM)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        returncode = launcher.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, list(command))
