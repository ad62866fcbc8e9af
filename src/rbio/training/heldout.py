"""Held-out answers during training: is the model getting unseen questions right, step by step?

Rewards and losses say how well the model fits its training prompts; they cannot tell learning
from memorising, nor a format learned from an answer learned. So every ``heldout_every_steps``
steps (config ``sft`` / ``grpo``; 0: never), and before the first, the model answers the split's
validation rows (``results/splits/<split>/validation.parquet``: training-line rows that no
verifier, prompt set or model is trained on, ``rbio.data.splits.make_split``) the way evaluation
asks its questions (``rbio.evaluation.generate``: the training prompt, greedy decoding), and logs

- ``heldout/accuracy``: the share answered correctly (an unparseable answer counts as wrong), i.e.
  the mean EXP answer reward on held-out questions;
- ``heldout/unparseable``: the share of answers the parser cannot read;
- ``heldout/auroc``: AUROC of the answer likelihood P(yes) after the generated reasoning
  (``rbio.evaluation.likelihood``), when both classes are present.

The points go into the trainer's ``log_history`` (saved with checkpoints, so a resumed run keeps
them; the training summaries' ``heldout_curve``; the learning-curve figure) and, for GRPO, to the
MLflow training run. Every process answers (all of them take part in a ZeRO-3 forward pass); only
the process that owns the MLflow run logs there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from transformers import TrainerCallback

log = logging.getLogger(__name__)

PREFIX = "heldout/"
TRAINING_STYLE = "nocot"  # the system prompt training prompts carry (rbio.data.prompts)
# Questions per generate call: the held-out set is small and answered rarely; a fixed number
# keeps the answers (padding) independent of any evaluation setting.
BATCH_SIZE = 32


@dataclass(frozen=True)
class HeldOutSettings:
    """What to answer and how often (``every_steps`` 0: never)."""

    rows: pd.DataFrame
    every_steps: int
    max_new_tokens: int
    seed: int
    batch_size: int = BATCH_SIZE


def answer_heldout(model, tokenizer, settings: HeldOutSettings) -> dict[str, float]:
    """The held-out metrics (module docstring) of ``model`` on ``settings.rows``."""
    from sklearn.metrics import roc_auc_score

    from rbio.evaluation.generate import (
        GenerationSettings,
        generate_hf,
        question_messages,
        render_prompts,
    )
    from rbio.evaluation.likelihood import likelihood_p_yes
    from rbio.rewards.parsing import parse_answer

    rows = settings.rows
    conversations = question_messages(rows, TRAINING_STYLE)
    decoding = GenerationSettings(
        greedy=True,
        num_samples=0,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
        seed=settings.seed,
    )
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"  # batched generation and scoring read the last position
    try:
        completions = generate_hf(model, tokenizer, conversations, decoding, progress=False).greedy
        p_yes = likelihood_p_yes(
            model,
            tokenizer,
            render_prompts(tokenizer, conversations),
            [[text] for text in completions],
            settings.batch_size,
        )
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    answers = [parse_answer(text) for text in completions]
    truth = np.where(rows["label"].to_numpy() == 1, "yes", "no")
    metrics = {
        f"{PREFIX}accuracy": float(np.mean([a == t for a, t in zip(answers, truth, strict=True)])),
        f"{PREFIX}unparseable": float(np.mean([a is None for a in answers])),
    }
    if len(set(truth)) == 2:
        metrics[f"{PREFIX}auroc"] = float(roc_auc_score(truth == "yes", p_yes))
    return metrics


class HeldOutAnswers(TrainerCallback):
    """Answers the held-out rows before training and every ``every_steps`` steps (and at the
    last step); appends the metrics to ``state.log_history`` and, given ``log_metrics`` (step,
    metrics) -> None, logs them there too."""

    def __init__(self, settings: HeldOutSettings, tokenizer, log_metrics=None) -> None:
        self.settings, self.tokenizer, self.log_metrics = settings, tokenizer, log_metrics

    def _answer(self, state, model) -> None:
        if any(
            PREFIX + "accuracy" in e and e["step"] == state.global_step for e in state.log_history
        ):
            return  # answered at this step already (a run resumed from its checkpoint)
        started = time.perf_counter()
        metrics = answer_heldout(model, self.tokenizer, self.settings)
        state.log_history.append({**metrics, "step": state.global_step})
        if self.log_metrics is not None:
            self.log_metrics(state.global_step, metrics)
        log.info(
            "held-out answers at step %d (%d rows, %.1f s): %s",
            state.global_step, len(self.settings.rows), time.perf_counter() - started, metrics,
        )  # fmt: skip

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.settings.every_steps and state.global_step == 0:
            self._answer(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.settings.every_steps
        if every and (state.global_step % every == 0 or state.global_step >= state.max_steps):
            self._answer(state, model)


def heldout_callbacks(
    validation: str, every_steps: int, max_new_tokens: int, seed: int, tokenizer, log_metrics=None
) -> list[HeldOutAnswers]:
    """The callback answering the rows of ``validation`` (a split's validation.parquet), or none
    when there are no rows or ``every_steps`` is 0."""
    if not every_steps or not validation:
        return []
    rows = pd.read_parquet(validation)
    if rows.empty:
        return []
    missing = sorted({"pert", "gene", "cell_line", "label"} - set(rows.columns))
    if missing:
        raise ValueError(f"{validation}: validation rows lack column(s) {missing}")
    settings = HeldOutSettings(rows.reset_index(drop=True), every_steps, max_new_tokens, seed)
    return [HeldOutAnswers(settings, tokenizer, log_metrics)]


def heldout_curve(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The held-out points of a trainer's log history, one per step answered."""
    return [
        {key: value for key, value in entry.items() if key == "step" or key.startswith(PREFIX)}
        for entry in log_history
        if PREFIX + "accuracy" in entry
    ]
