"""The mention reward: does the reasoning talk about the genes the question is about?

The share of the row's ``keywords`` (the two gene names) that occur inside ``<think>`` blocks,
case-insensitively and as whole words: "TP53" counts in "tp53's role" and "TP53-dependent" but
not in "TP531". None where the row has no keywords.

>>> mention(["<think>Knocking down TP53 ...</think><answer>no</answer>"],
...         keywords=[["TP53", "MDM2"]])
[0.5]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rbio.rewards.parsing import column, completion_text, parse_completion, string_list


@lru_cache(maxsize=65536)
def _whole_word(keyword: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(keyword.casefold()) + r"(?!\w)")


def mentioned_share(text: str, keywords: Sequence[str]) -> float | None:
    """Share of distinct keywords found as whole words in the think blocks of ``text``.

    >>> mentioned_share("<think>brca1 and BRCA2</think>", ["BRCA1", "BRCA2", "brca1"])
    1.0
    """
    distinct = list(dict.fromkeys(k.casefold() for k in keywords if k.strip()))
    if not distinct:
        return None
    thinking = parse_completion(text).section("think").casefold()
    if not thinking:
        return 0.0
    return sum(_whole_word(k).search(thinking) is not None for k in distinct) / len(distinct)


def mention(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """Share of the row's keywords mentioned inside ``<think>``; [0, 1], None without keywords.

    Needs the column ``keywords`` (list of str, or a ``|``-joined string; a missing value, None
    or NaN, counts as no keywords). A completion that is None is the empty text (0.0).

    >>> mention(["no tags, TP53"], keywords=[["TP53"]])
    [0.0]
    """
    keywords = column(kwargs, "keywords", len(completions), "mention")
    return [
        mentioned_share(completion_text(completion), string_list(row_keywords, "keywords", row))
        for row, (completion, row_keywords) in enumerate(zip(completions, keywords, strict=True))
    ]
