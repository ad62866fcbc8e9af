"""The answer reward: the verifier's confidence in the class the model answered.

Each prompt row carries ``classes`` ("no|yes") and ``class_confidences`` ("0.23|0.77"): hard
labels for EXP rows ("1|0"-style, so 0/1 rewards), soft ones for MLP and TF rows. The reward of a
completion is the confidence of the class :func:`rbio.rewards.parsing.parse_answer` reads from
it, 0 when no single yes/no can be read (a completion that is None included: no answer is a
wrong answer, as an empty one), and None where the row has no answer verifier
(``class_confidences`` is "" or missing, e.g. GO-only rows).

>>> answer(["<think>t</think><answer>yes</answer>", "<answer>maybe</answer>", "<answer>no</answer>"],
...        classes=["no|yes", "no|yes", "no|yes"], class_confidences=["0.25|0.75", "0.25|0.75", ""])
[0.75, 0.0, None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rbio.rewards.parsing import column, completion_text, is_missing, parse_answer


@lru_cache(maxsize=4096)
def class_confidences(classes: str, confidences: str) -> dict[str, float]:
    """``{"no": 0.23, "yes": 0.77}`` from ``"no|yes"`` and ``"0.23|0.77"``; class names are
    stripped and lower-cased. Raises ValueError on malformed or out-of-range values.

    >>> class_confidences("no|yes", "1|0")
    {'no': 1.0, 'yes': 0.0}
    """
    names = [name.strip().lower() for name in str(classes).split("|")]
    parts = str(confidences).split("|")
    if len(names) != len(parts) or len(set(names)) != len(names) or not all(names):
        raise ValueError(
            f"classes {classes!r} and class_confidences {confidences!r} do not pair up "
            "(need distinct, non-empty class names and one confidence per class)"
        )
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ValueError(f"class_confidences {confidences!r} holds a non-number") from None
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"class_confidences {confidences!r} must lie in [0, 1]")
    return dict(zip(names, values, strict=True))


def answer(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """Confidence of the answered class per completion; [0, 1], None without a verifier.

    Needs the columns ``classes`` and ``class_confidences``. A malformed confidence string is a
    data error and raises, naming the row.

    >>> answer([[{"role": "assistant", "content": "<answer>No.</answer>"}]],
    ...        classes=["no|yes"], class_confidences=["0.9|0.1"])
    [0.9]
    """
    n = len(completions)
    classes = column(kwargs, "classes", n, "answer")
    confidences = column(kwargs, "class_confidences", n, "answer")
    rewards: list[float | None] = []
    for row, (completion, row_classes, row_confidences) in enumerate(
        zip(completions, classes, confidences, strict=True)
    ):
        if is_missing(row_confidences) or not str(row_confidences).strip():
            rewards.append(None)
            continue
        try:
            table = class_confidences(str(row_classes), str(row_confidences))
        except ValueError as error:
            raise ValueError(f"reward 'answer', row {row}: {error}") from None
        said = parse_answer(completion_text(completion))
        rewards.append(table.get(said, 0.0) if said is not None else 0.0)
    return rewards
