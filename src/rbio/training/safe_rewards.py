"""Reward functions that cannot kill a long run, and the monitor that stops a run going bad.

A 100k-step GRPO run scores millions of completions written by a model that is still learning; a
reward function that raises on one odd completion (a regex corner case, a gene missing from a
table) must not throw away days of training. ``SafeReward`` wraps a reward function:

- the batch is scored as usual; if the call raises, each completion is scored on its own, so only
  the offending completions lose their score;
- an offending completion is scored ``None`` (the documented fallback: TRL turns None into NaN,
  leaves it out of that reward's mean, and a completion no reward could score gets advantage 0,
  i.e. it neither pushes nor pulls the policy);
- the exception is logged with the completion text, counted, and reported to MLflow
  (``reward_failures/<name>``: failed completions per reward call, averaged over a logging window).

``RewardFailureMonitor`` (a TrainerCallback) closes a window every ``logging_steps`` steps: when
more than ``max_failure_rate`` (1%) of one reward's completions in the window failed, training
stops with ``RewardFailureError`` naming the reward, the rate and the first offending completion.
A systematic bug then fails fast instead of silently training on None.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

# Above this share of failed completions in a logging window the run stops.
MAX_FAILURE_RATE = 0.01

# Keyword arguments TRL passes that are not per-completion columns.
_SHARED_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class RewardFailureError(RuntimeError):
    """Too many completions in a logging window made a reward function raise."""


@dataclass
class Failure:
    reward: str
    step: int
    completion: Any
    error: str


@dataclass
class _Window:
    scored: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    first: dict[str, Failure] = field(default_factory=dict)


def reward_name(func: Callable) -> str:
    """The name TRL shows for a reward (``rewards/<name>/mean``): ``__name__`` or the class name."""
    return getattr(func, "__name__", type(func).__name__)


class RewardFailureMonitor(TrainerCallback):
    """Counts reward failures per logging window; stops the run above ``max_failure_rate``."""

    def __init__(self, max_failure_rate: float = MAX_FAILURE_RATE) -> None:
        self.max_failure_rate = max_failure_rate
        self.window = _Window()
        self.window_start = 0
        self.total_scored: dict[str, int] = {}
        self.total_failed: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    def record(
        self, name: str, scored: int, failures: Sequence[Failure], seconds: float = 0.0
    ) -> None:
        w = self.window
        w.scored[name] = w.scored.get(name, 0) + scored
        w.failed[name] = w.failed.get(name, 0) + len(failures)
        if failures and name not in w.first:
            w.first[name] = failures[0]
        self.total_scored[name] = self.total_scored.get(name, 0) + scored
        self.total_failed[name] = self.total_failed.get(name, 0) + len(failures)
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def check_window(self, step: int) -> None:
        """Close the window that ends at ``step``; raise if a reward failed too often in it."""
        window, start = self.window, self.window_start
        self.window, self.window_start = _Window(), step
        for name, failed in window.failed.items():
            scored = window.scored[name]
            if scored and failed / scored > self.max_failure_rate:
                first = window.first[name]
                raise RewardFailureError(
                    f"reward '{name}' failed on {failed} of {scored} completions "
                    f"({failed / scored:.1%}) in steps {start + 1}-{step}, above the "
                    f"{self.max_failure_rate:.0%} limit. First failure (step {first.step}): "
                    f"{first.error}\ncompletion: {first.completion!r}"
                )

    def totals(self) -> dict[str, Any]:
        return {
            "reward_failures": dict(self.total_failed),
            "reward_completions_scored": dict(self.total_scored),
            "reward_seconds": {name: round(value, 4) for name, value in self.seconds.items()},
        }

    # TrainerCallback hooks
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % args.logging_steps == 0:
            self.check_window(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.check_window(state.global_step)


class SafeReward:
    """A reward function that logs, counts and scores ``None`` where the wrapped one raises."""

    def __init__(self, func: Callable, monitor: RewardFailureMonitor) -> None:
        self.func = func
        self.monitor = monitor
        # TRL names the reward after __name__: keep the wrapped function's name.
        self.__name__ = reward_name(func)

    def __repr__(self) -> str:
        return f"SafeReward({self.__name__})"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        started = time.perf_counter()
        step = getattr(kwargs.get("trainer_state"), "global_step", -1)
        failures: list[Failure] = []
        try:
            scores = list(self.func(completions=completions, **kwargs))
            if len(scores) != len(completions):
                raise ValueError(
                    f"returned {len(scores)} scores for {len(completions)} completions"
                )
        except Exception:  # noqa: BLE001 - any reward bug is isolated per completion below
            scores = [
                self._score_one(i, completions, kwargs, step, failures)
                for i in range(len(completions))
            ]
        seconds = time.perf_counter() - started
        self.monitor.record(self.__name__, len(completions), failures, seconds)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric(f"reward_failures/{self.__name__}", float(len(failures)))
        return scores

    def _score_one(
        self,
        index: int,
        completions: Sequence[Any],
        kwargs: dict[str, Any],
        step: int,
        failures: list[Failure],
    ) -> float | None:
        one = {
            key: (
                value
                if key in _SHARED_KWARGS or not _is_column(value, completions)
                else value[index : index + 1]
            )
            for key, value in kwargs.items()
        }
        try:
            (score,) = self.func(completions=completions[index : index + 1], **one)
            return score
        except Exception as error:  # noqa: BLE001 - logged, counted, scored None
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            failures.append(Failure(self.__name__, step, completions[index], detail))
            log.warning(
                "reward '%s' raised on a completion at step %d (scored None): %s\ncompletion: %r",
                self.__name__,
                step,
                detail,
                completions[index],
            )
            return None


def _is_column(value: Any, completions: Sequence[Any]) -> bool:
    return isinstance(value, list | tuple) and len(value) == len(completions)


def wrap_rewards(funcs: Sequence[Callable], monitor: RewardFailureMonitor) -> list[SafeReward]:
    return [SafeReward(func, monitor) for func in funcs]
