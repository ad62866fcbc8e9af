"""Logging for workflow scripts: everything (logging, warnings, tracebacks) goes to the rule's log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from rbio.progress import quiet_library_bars


def log_to(path: str | Path) -> logging.Logger:
    """Send stderr and the ``rbio`` loggers to ``path`` (a rule's ``log:`` file)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    quiet_library_bars()  # stderr is the log file now
    return logging.getLogger("rbio")
