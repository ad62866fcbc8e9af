"""Brevity: a shorter completion scores higher (1 for none, 0.5 at 100 words).

>>> brevity(["<think>TP53 binds DNA.</think><answer>yes</answer>"])
[0.9709]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rbio.rewards.parsing import completion_text, parse_completion


def brevity(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    words = [parse_completion(completion_text(c)).word_count for c in completions]
    return [round(1 / (1 + n / 100), 4) for n in words]
