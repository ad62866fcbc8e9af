"""A reward that raises on one completion cannot kill a run; too many failures stop it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from rbio.training.safe_rewards import (
    RewardFailureError,
    RewardFailureMonitor,
    SafeReward,
)


def picky(completions, label, **kwargs):
    """Raises on any completion containing 'boom'; otherwise 1.0 when it names the label."""
    scores = []
    for text, y in zip(completions, label, strict=True):
        if "boom" in text:
            raise ValueError("cannot parse")
        scores.append(float(str(y) in text))
    return scores


def call(reward, completions, labels, step=1, metrics=None):
    def log_metric(name, value):
        if metrics is not None:
            metrics.setdefault(name, []).append(value)

    return reward(
        completions=completions,
        prompts=["p"] * len(completions),
        label=labels,
        trainer_state=SimpleNamespace(global_step=step),
        log_metric=log_metric,
    )


def test_only_the_offending_completion_is_scored_none(caplog):
    monitor = RewardFailureMonitor()
    reward = SafeReward(picky, monitor)
    metrics: dict = {}
    with caplog.at_level(logging.WARNING):
        scores = call(reward, ["1 yes", "boom!", "0"], [1, 1, 0], metrics=metrics)
    assert scores == [1.0, None, 1.0]
    assert reward.__name__ == "picky"
    assert "boom!" in caplog.text and "cannot parse" in caplog.text
    assert metrics == {"reward_failures/picky": [1.0]}
    assert monitor.totals()["reward_failures"] == {"picky": 1}


def test_window_above_one_percent_stops_with_the_first_offender():
    monitor = RewardFailureMonitor()
    reward = SafeReward(picky, monitor)
    for step in range(1, 5):
        call(reward, ["1"] * 50, [1] * 50, step=step)
    call(reward, ["1"] * 47 + ["boom first", "boom 2", "boom 3"], [1] * 50, step=5)
    with pytest.raises(RewardFailureError, match=r"3 of 250 .*1.2%.*steps 1-5(.|\n)*'boom first'"):
        monitor.check_window(5)


def test_window_at_or_below_one_percent_continues_and_resets():
    monitor = RewardFailureMonitor()
    reward = SafeReward(picky, monitor)
    call(reward, ["1"] * 99 + ["boom"], [1] * 100)
    monitor.check_window(1)  # exactly 1%: continue
    call(reward, ["1"] * 10, [1] * 10, step=2)
    monitor.check_window(2)
    assert monitor.totals()["reward_failures"] == {"picky": 1}
    assert monitor.totals()["reward_completions_scored"] == {"picky": 110}


def test_wrong_length_output_is_isolated_per_completion():
    monitor = RewardFailureMonitor()

    def short(completions, **kwargs):
        return [1.0] if len(completions) == 1 else [1.0]

    reward = SafeReward(short, monitor)
    assert call(reward, ["a", "b"], [0, 0]) == [1.0, 1.0]
