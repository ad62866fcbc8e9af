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


def other_process(*calls: list[float]):
    """A reducer standing in for the all-reduce: adds another process's counts (one flat list
    per call, in the monitor's order) to this one's."""
    pending = list(calls)

    def reduce(values):
        other = pending.pop(0)
        assert len(other) == len(values)
        return [a + b for a, b in zip(values, other, strict=True)]

    return reduce


def test_the_failure_budget_is_the_jobs_over_all_processes():
    # This process: 0 of 100 failed; another: 3 of 100 -> 1.5% of the job's completions.
    monitor = RewardFailureMonitor(reduce=other_process([100, 3]))  # scored, failed
    call(SafeReward(picky, monitor), ["1"] * 100, [1] * 100)
    with pytest.raises(RewardFailureError, match=r"3 of 200 .*1.5%.*other processes"):
        monitor.check_window(1)
    # 2 of 100 failed here (2% locally) but 2 of 400 in the job (0.5%): training continues.
    monitor = RewardFailureMonitor(reduce=other_process([300, 0]))
    call(SafeReward(picky, monitor), ["1"] * 98 + ["boom", "boom"], [1] * 100)
    monitor.check_window(1)


def test_totals_are_summed_over_processes_when_training_ends():
    # Names in order "<lambda>", "picky"; window (scored, failed), then totals (failed, scored,
    # seconds).
    window, totals = [5, 7, 1, 2], [1, 2, 5, 7, 0.5, 0.25]
    monitor = RewardFailureMonitor(max_failure_rate=1.0, reduce=other_process(window, totals))
    SafeReward(picky, monitor)  # registered, never called here: still reduced, in name order
    call(SafeReward(lambda completions, **kw: [0.0] * len(completions), monitor), ["x"], [1])
    monitor.on_train_end(SimpleNamespace(logging_steps=1), SimpleNamespace(global_step=1), None)
    assert monitor.totals()["reward_failures"] == {"<lambda>": 1, "picky": 2}
    assert monitor.totals()["reward_completions_scored"] == {"<lambda>": 6, "picky": 7}


def _count_in_process(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    from rbio.training.safe_rewards import sum_over_ranks

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        results.put((rank, sum_over_ranks([rank + 1.0, 10.0 * rank])))
    finally:
        dist.destroy_process_group()


def test_sum_over_ranks_all_reduces_in_a_real_two_process_group():
    import multiprocessing
    import socket

    from rbio.training.safe_rewards import sum_over_ranks

    assert sum_over_ranks([1.0, 2.0]) == [1.0, 2.0]  # no process group: the local values
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_count_in_process, args=(r, port, results)) for r in (0, 1)]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == {0: [3.0, 10.0], 1: [3.0, 10.0]}
