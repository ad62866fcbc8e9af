"""Progress a person can read in a job's log file.

A tqdm bar redraws itself with ``\\r``: in a terminal that is one moving line, in a log file it is
one line that grows for the whole job (a 40 GB download, an evaluation's generation). Every long
loop takes its bar from :func:`progress_bar`: a plain tqdm bar on a terminal, otherwise one log
line (through ``logging``) every :data:`LOG_INTERVAL_S` seconds. :func:`quiet_library_bars`
turns off the bars of the Hugging Face libraries when the job writes to a file.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

LOG_INTERVAL_S = 60.0  # a line a minute: a day-long job still has a log one can scroll
# The Hugging Face libraries read these when imported (huggingface_hub, datasets).
LIBRARY_BAR_SWITCHES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")

log = logging.getLogger(__name__)


def interactive() -> bool:
    """Whether stderr is a terminal (where a redrawn bar is readable)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def format_duration(seconds: float) -> str:
    """A short duration for a progress line.

    >>> [format_duration(s) for s in (42, 900, 7500, 3 * 86400 + 4 * 3600)]
    ['42s', '15m', '2h05m', '3d04h']
    """
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


class _LogLines:
    """A file for tqdm that turns each redraw into one log record (no ``\\r``)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line:
            self.logger.info(line)

    def flush(self) -> None:
        pass


def progress_bar(
    iterable: Iterable | None = None, *, logger: logging.Logger | None = None, **kwargs: Any
):
    """``tqdm(iterable, **kwargs)`` that a log file can hold: on a terminal a normal bar; else a
    line through ``logger`` (default: this module's) at most every :data:`LOG_INTERVAL_S`."""
    from tqdm.auto import tqdm

    if interactive() or kwargs.get("disable"):
        return tqdm(iterable, **kwargs)
    # A fixed width and plain characters: the line is the same wherever the log is read.
    file_safe = {"file": _LogLines(logger or log), "ascii": True, "dynamic_ncols": False}
    return tqdm(iterable, **{"mininterval": LOG_INTERVAL_S, "ncols": 100, **kwargs, **file_safe})


def quiet_library_bars() -> None:
    """Turn off the Hugging Face libraries' own bars when stderr is not a terminal (jobs writing
    to a rule's log): their ``\\r`` redraws make one unreadable line per download or map."""
    if interactive():
        return
    for switch in LIBRARY_BAR_SWITCHES:
        os.environ.setdefault(switch, "1")
    # Already imported: the variable was read at import time.
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
