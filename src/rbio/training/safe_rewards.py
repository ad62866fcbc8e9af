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
A systematic bug then fails fast instead of silently training on None. On several GPUs the budget
is the job's, not each process's: every process sums its window's counts over all of them
(``sum_over_ranks``, a torch.distributed all-reduce) and all stop together or none does; the
run's totals in the training summary are summed the same way when training ends.
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

# Element-wise sum of a list of counts over the job's processes (``sum_over_ranks``; tests fake it).
Reducer = Callable[[Sequence[float]], list[float]]

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


def sum_over_ranks(values: Sequence[float]) -> list[float]:
    """``values`` summed element-wise over the processes of a torch.distributed job (all of
    them must call it at the same point, with lists of the same length); in a single process,
    the values themselves."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    # NCCL reduces CUDA tensors only; gloo (CPU) takes CPU tensors.
    cuda = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


class RewardFailureMonitor(TrainerCallback):
    """Counts reward failures per logging window; stops the run above ``max_failure_rate`` of
    the window's completions over all processes (``reduce``)."""

    def __init__(
        self, max_failure_rate: float = MAX_FAILURE_RATE, reduce: Reducer = sum_over_ranks
    ) -> None:
        self.max_failure_rate = max_failure_rate
        self.reduce = reduce
        # Every reward the job wraps, so each process reduces the same counts in the same order
        # even when one of them has not called a reward yet.
        self.names: set[str] = set()
        self.window = _Window()
        self.window_start = 0
        self.total_scored: dict[str, int] = {}
        self.total_failed: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.global_totals: dict[str, Any] | None = None  # summed over processes at train end

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

    def _summed(self, *counts: dict[str, float]) -> tuple[list[str], list[list[float]]]:
        """The reward names and, per mapping in ``counts``, its values summed over processes."""
        names = sorted(self.names.union(*counts))
        if not names:
            return names, [[] for _ in counts]
        summed = self.reduce([c.get(name, 0) for c in counts for name in names])
        return names, [summed[i : i + len(names)] for i in range(0, len(summed), len(names))]

    def check_window(self, step: int) -> None:
        """Close the window that ends at ``step``; raise if a reward failed too often in it, over
        all processes (each one closes its window at the same step)."""
        window, start = self.window, self.window_start
        self.window, self.window_start = _Window(), step
        names, (scored, failed) = self._summed(window.scored, window.failed)
        for name, n_scored, n_failed in zip(names, map(int, scored), map(int, failed), strict=True):
            if n_scored and n_failed / n_scored > self.max_failure_rate:
                first = window.first.get(name)
                where = (
                    f"First failure here (step {first.step}): {first.error}\n"
                    f"completion: {first.completion!r}"
                    if first
                    else "The failures were in other processes: their logs name them."
                )
                raise RewardFailureError(
                    f"reward '{name}' failed on {n_failed} of {n_scored} completions "
                    f"({n_failed / n_scored:.1%}) in steps {start + 1}-{step}, above the "
                    f"{self.max_failure_rate:.0%} limit. {where}"
                )

    def totals(self) -> dict[str, Any]:
        """Failed and scored completions and seconds per reward: over all processes once
        training has ended, else this process's."""
        if self.global_totals is not None:
            return self.global_totals
        return {
            "reward_failures": dict(self.total_failed),
            "reward_completions_scored": dict(self.total_scored),
            "reward_seconds": {name: round(value, 4) for name, value in self.seconds.items()},
        }

    def _sum_totals(self) -> None:
        names, (failed, scored, seconds) = self._summed(
            self.total_failed, self.total_scored, self.seconds
        )
        self.global_totals = {
            "reward_failures": dict(zip(names, map(int, failed), strict=True)),
            "reward_completions_scored": dict(zip(names, map(int, scored), strict=True)),
            "reward_seconds": {n: round(v, 4) for n, v in zip(names, seconds, strict=True)},
        }

    # TrainerCallback hooks
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % args.logging_steps == 0:
            self.check_window(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.check_window(state.global_step)
        self._sum_totals()


class SafeReward:
    """A reward function that logs, counts and scores ``None`` where the wrapped one raises."""

    def __init__(self, func: Callable, monitor: RewardFailureMonitor) -> None:
        self.func = func
        self.monitor = monitor
        # TRL names the reward after __name__: keep the wrapped function's name.
        self.__name__ = reward_name(func)
        monitor.names.add(self.__name__)

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
