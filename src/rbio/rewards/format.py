"""The format reward: how well a completion follows the tag layout the system prompt asks for.

The reward is the mean of eleven checks, each in [0, 1] (rbio's ``composite_formatting_reward``,
re-implemented). Label-style rows (EXP, MLP, TF) are asked for ``<think>…</think>`` then
``<answer>…</answer>``; GO rows (sources go, go_c, go_f, go_p) for ``<gene_info>…</gene_info>``
first, so their last check is "gene_info comes first" instead of "starts with <think>".

A completion that follows the layout scores exactly 1.0:

>>> fmt = FormatReward()
>>> fmt(["<think>TP53 is a tumour suppressor.</think><answer>yes</answer>"])
[1.0]
>>> fmt(["<gene_info>TP53: DNA binding.</gene_info><think>So yes.</think><answer>yes</answer>"],
...     source=["go"])
[1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rbio.rewards.parsing import (
    TAG_RE,
    WORD_RE,
    ParsedCompletion,
    completion_text,
    is_go_source,
    optional_column,
    parse_completion,
)

FormatCheck = Callable[[ParsedCompletion], float]


def has_think(parsed: ParsedCompletion) -> float:
    """1 if there is at least one complete ``<think>…</think>`` block."""
    return float(bool(parsed.blocks_of("think")))


def tagged_word_share(parsed: ParsedCompletion) -> float:
    """Share of the words (``\\w+``, tag markers excluded) that sit inside some block; 0 if none."""
    if not parsed.word_count:
        return 0.0
    return parsed.tagged_word_count / parsed.word_count


def within_length(parsed: ParsedCompletion, max_words: int = 200) -> float:
    """1 if the completion has at most ``max_words`` words (tag markers excluded)."""
    return float(parsed.word_count <= max_words)


def one_answer(parsed: ParsedCompletion) -> float:
    """1 if there is exactly one ``<answer>`` opening tag."""
    return float(len(parsed.openings("answer")) == 1)


def answer_after_think(parsed: ParsedCompletion) -> float:
    """1 if the first ``<answer>`` starts after the last ``</think>`` ends; 0 if either is missing."""
    answers, think_ends = parsed.openings("answer"), parsed.closings("think")
    if not answers or not think_ends:
        return 0.0
    return float(answers[0].start >= think_ends[-1].end)


def think_has_text(parsed: ParsedCompletion) -> float:
    """1 if there is a think block and every think block holds at least one word."""
    blocks = parsed.blocks_of("think")
    if not blocks:
        return 0.0
    text = parsed.text
    return float(all(_has_word(text[b.content_start : b.content_end]) for b in blocks))


def _has_word(fragment: str) -> bool:
    return WORD_RE.search(TAG_RE.sub(" ", fragment)) is not None


def no_nested_tags(parsed: ParsedCompletion) -> float:
    """1 if there are tags and no block contains another tag marker (``<think><answer>…``)."""
    if not parsed.tags:
        return 0.0
    return float(not any(block.has_inner_tags for block in parsed.blocks))


def few_thinks(parsed: ParsedCompletion, max_thinks: int = 3) -> float:
    """1 if there are between one and ``max_thinks`` ``<think>`` opening tags."""
    return float(1 <= len(parsed.openings("think")) <= max_thinks)


def tags_balanced(parsed: ParsedCompletion) -> float:
    """1 if there are tags and they nest like brackets: each closing tag closes the most recently
    opened one, and nothing is left open."""
    if not parsed.tags:
        return 0.0
    stack: list[str] = []
    for tag in parsed.tags:
        if not tag.closing:
            stack.append(tag.kind)
        elif not stack or stack.pop() != tag.kind:
            return 0.0
    return float(not stack)


def ends_with_answer(parsed: ParsedCompletion) -> float:
    """1 if the last non-space characters are ``</answer>``."""
    if not parsed.tags:
        return 0.0
    last = parsed.tags[-1]
    return float(last.kind == "answer" and last.closing and last.end == len(parsed.text.rstrip()))


def starts_with_think(parsed: ParsedCompletion) -> float:
    """1 if the first non-space characters are ``<think>`` (label-style rows)."""
    if not parsed.tags:
        return 0.0
    first = parsed.tags[0]
    return float(first.kind == "think" and not first.closing and first.start == _lead(parsed))


def gene_info_first(parsed: ParsedCompletion) -> float:
    """1 if the completion opens with ``<gene_info>…</gene_info>`` (after optional spaces) and
    the next tag is ``<think>`` (GO rows; replaces :func:`starts_with_think`)."""
    tags = parsed.tags
    if len(tags) < 3:
        return 0.0
    opening, closing, think = tags[0], tags[1], tags[2]
    return float(
        opening.kind == "gene_info"
        and not opening.closing
        and opening.start == _lead(parsed)
        and closing.kind == "gene_info"
        and closing.closing
        and think.kind == "think"
        and not think.closing
    )


def _lead(parsed: ParsedCompletion) -> int:
    return len(parsed.text) - len(parsed.text.lstrip())


class FormatReward:
    """Mean of the eleven format checks of a completion; range [0, 1].

    The checks (each 0 or 1 except the word share):
    1. ``has_think``: at least one complete think block;
    2. ``tagged_word_share``: share of words inside blocks;
    3. ``within_length``: at most ``max_words`` (200) words;
    4. ``one_answer``: exactly one ``<answer>``;
    5. ``answer_after_think``: the answer starts after the last ``</think>``;
    6. ``think_has_text``: every think block holds a word;
    7. ``no_nested_tags``: no block contains another tag;
    8. ``few_thinks``: one to ``max_thinks`` (3) ``<think>`` tags;
    9. ``tags_balanced``: all tags closed, in bracket order;
    10. ``ends_with_answer``: the completion ends with ``</answer>``;
    11. ``starts_with_think`` (label rows) or ``gene_info_first`` (GO rows, by the ``source``
        column; rows without a source count as label rows).

    Structural checks (7, 9) score 0 on a completion without any tag, so an empty or tag-free
    completion cannot collect points for "nothing is nested"; it keeps only the length check.

    >>> FormatReward()(["just an answer: yes"])  # only within_length passes: 1/11
    [0.09090909090909091]
    >>> round(FormatReward()(["<think>short</think>"])[0], 4)  # 1,2,3,6,7,8,9,11 pass
    0.7273
    """

    __name__ = "format"

    def __init__(self, max_words: int = 200, max_thinks: int = 3) -> None:
        if max_words < 1 or max_thinks < 1:
            raise ValueError(
                f"format reward: max_words ({max_words}) and max_thinks ({max_thinks}) must be >= 1"
            )
        self.max_words = max_words
        self.max_thinks = max_thinks

    def checks(self, text: str, go_layout: bool = False) -> dict[str, float]:
        """Every check's score for one completion text, by name (for debugging and tests)."""
        parsed = parse_completion(text)
        last_name, last_check = (
            ("gene_info_first", gene_info_first)
            if go_layout
            else ("starts_with_think", starts_with_think)
        )
        return {
            "has_think": has_think(parsed),
            "tagged_word_share": tagged_word_share(parsed),
            "within_length": within_length(parsed, self.max_words),
            "one_answer": one_answer(parsed),
            "answer_after_think": answer_after_think(parsed),
            "think_has_text": think_has_text(parsed),
            "no_nested_tags": no_nested_tags(parsed),
            "few_thinks": few_thinks(parsed, self.max_thinks),
            "tags_balanced": tags_balanced(parsed),
            "ends_with_answer": ends_with_answer(parsed),
            last_name: last_check(parsed),
        }

    def score(self, text: str, go_layout: bool = False) -> float:
        values = self.checks(text, go_layout).values()
        return sum(values) / len(values)

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        sources = optional_column(kwargs, "source", len(completions))
        return [
            self.score(completion_text(completion), is_go_source(source))
            for completion, source in zip(completions, sources, strict=True)
        ]

    def __repr__(self) -> str:
        return f"FormatReward(max_words={self.max_words}, max_thinks={self.max_thinks})"


format_reward = FormatReward()
