"""Answer-likelihood scoring: P(yes) from the next-token distribution right after ``<answer>``.

Sampled voting reduces each question to the share of "yes" among k answers, a score with k + 1
levels that ties most rows; PerturbQA's own metric (per-gene AUROC) ranks rows within a gene and
loses most of its signal to those ties. Here the model's probability of answering "yes" is read
directly: the text the model would be scored on is teacher-forced up to and including the
``<answer>`` tag, and one forward pass gives the next-token probabilities of the answer words.

- With reasoning (every system prompt of ``rbio.data.prompts`` asks for ``<think>`` before the
  answer, so every evaluated question has generated traces): each trace is the sampled completion
  up to and including its first ``<answer>`` tag (the tag appended when the completion has none),
  and the question's P(yes) is the mean over its traces.
- Without a trace: the prompt followed directly by the answer tag.
- P(yes) is normalised over yes/no: the summed probability of the first token of every accepted
  spelling of "yes" against that of "no" (:class:`AnswerTokens`, defined once per tokenizer), so
  probability the model puts on other tokens does not count.
- A negated question (``rbio.data.prompts.Template.negated``) asks "is it *not* DE?", so its
  P(DE) is 1 - P(yes), the flip the prompt builders apply to labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rbio.rewards.parsing import TAG_RE

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ANSWER_TAG = "<answer>"
# Spellings the answer parser reads as yes/no that a model may start its answer with.
YES_SPELLINGS: tuple[str, ...] = ("yes", " yes", "Yes", " Yes", "YES", " YES")
NO_SPELLINGS: tuple[str, ...] = ("no", " no", "No", " No", "NO", " NO")


class LikelihoodError(ValueError):
    """A tokenizer whose answer words cannot be told apart by their first token."""


@dataclass(frozen=True)
class AnswerTokens:
    """Token ids that start a "yes" and a "no" answer (first token of each spelling)."""

    yes: tuple[int, ...]
    no: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> AnswerTokens:
        def first_tokens(spellings: Sequence[str]) -> set[int]:
            return {
                ids[0]
                for ids in (tokenizer.encode(s, add_special_tokens=False) for s in spellings)
                if ids
            }

        yes, no = first_tokens(YES_SPELLINGS), first_tokens(NO_SPELLINGS)
        # A token that starts both words (e.g. a bare space) says nothing about the answer.
        shared = yes & no
        yes, no = yes - shared, no - shared
        if not yes or not no:
            raise LikelihoodError(
                f"tokenizer {type(tokenizer).__name__}: no first token tells yes from no "
                f"(yes {sorted(yes)}, no {sorted(no)}, shared {sorted(shared)})"
            )
        return cls(tuple(sorted(yes)), tuple(sorted(no)))


def answer_context(completion: str) -> str:
    """The completion up to and including its first ``<answer>`` tag, or the whole completion
    with the tag appended when it has none (the position where the answer word comes next).

    >>> answer_context("<think>x</think><ANSWER> yes</answer>")
    '<think>x</think><ANSWER>'
    >>> answer_context("<think>unfinished")
    '<think>unfinished<answer>'
    """
    for tag in TAG_RE.finditer(completion):
        if tag.group(2).lower() == "answer" and not tag.group(1):
            return completion[: tag.end()]
    return completion + ANSWER_TAG


def teacher_forced_texts(prompt: str, traces: Sequence[str]) -> list[str]:
    """The texts whose next token is the answer: one per trace, or the bare answer prefix."""
    if not traces:
        return [prompt + ANSWER_TAG]
    return [prompt + answer_context(trace) for trace in traces]


def next_token_p_yes(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    tokens: AnswerTokens,
    batch_size: int,
) -> np.ndarray:
    """P(yes | yes or no) of the token following each text, one forward pass per batch."""
    import torch

    if tokenizer.padding_side != "left":
        raise LikelihoodError("batched scoring needs tokenizer.padding_side == 'left'")
    lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    order = np.argsort(lengths, kind="stable")[::-1]  # similar lengths together: little padding
    result = np.empty(len(texts))
    yes, no = torch.tensor(tokens.yes), torch.tensor(tokens.no)
    model.eval()
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        inputs = tokenizer(
            [texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        mask = inputs["attention_mask"]
        # Positions count real tokens only, as in ``generate``: a left-padded text is scored as if
        # unpadded (rotary embeddings would not mind the shift, absolute positions would).
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(**inputs, position_ids=positions).logits[:, -1, :].float().cpu()
        log_probs = torch.log_softmax(logits, dim=-1)
        log_yes = torch.logsumexp(log_probs[:, yes], dim=-1)
        log_no = torch.logsumexp(log_probs[:, no], dim=-1)
        result[batch] = torch.sigmoid(log_yes - log_no).numpy()
    return result


def p_de(p_yes: np.ndarray, negated: Sequence[bool]) -> np.ndarray:
    """P(differentially expressed) from P(yes): flipped for negated questions.

    >>> p_de(np.array([0.8, 0.8]), [False, True]).round(2).tolist()
    [0.8, 0.2]
    """
    return np.where(np.asarray(negated, dtype=bool), 1.0 - p_yes, p_yes)


def likelihood_p_yes(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    traces: Sequence[Sequence[str]],
    batch_size: int,
) -> np.ndarray:
    """Each question's P(yes): the mean over its traces (``traces[i]`` for ``prompts[i]``) of
    the normalised next-token P(yes) after the answer tag; all texts in shared batches."""
    texts: list[str] = []
    owner: list[int] = []
    for index, (prompt, question_traces) in enumerate(zip(prompts, traces, strict=True)):
        forced = teacher_forced_texts(prompt, question_traces)
        texts.extend(forced)
        owner.extend([index] * len(forced))
    tokens = AnswerTokens.from_tokenizer(tokenizer)
    per_text = next_token_p_yes(model, tokenizer, texts, tokens, batch_size)
    counts = np.bincount(owner, minlength=len(prompts))
    return np.bincount(owner, weights=per_text, minlength=len(prompts)) / counts
