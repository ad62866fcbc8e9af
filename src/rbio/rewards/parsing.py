"""Reading a completion: its text, its tags, its sections, and the yes/no answer it gives.

One parse per completion is shared by every reward (``parse_completion`` is cached), so the
rewards of one GRPO step scan each completion once.

Tags are ``<think>``, ``<answer>`` and ``<gene_info>`` with their closing forms, matched
case-insensitively and only in exactly that spelling (``< think >`` or ``<think id=1>`` are
plain text). A *block* is an opening tag with the first closing tag of the same kind after it,
found left to right without overlap per kind, which is what the regular expression
``<think>(.*?)</think>`` finds; unmatched tags open no block.

>>> parse_answer("<think>BRCA1 repairs DNA.</think><answer>Yes.</answer>")
'yes'
>>> parse_answer("<answer>yes and no</answer>") is None
True

Two readings of the answer exist, one per evaluation protocol: :func:`parse_answer` (lenient,
also what the rewards use) and :func:`parse_answer_strict` (the paper benchmark's bare yes/no).
"""

from __future__ import annotations

import numbers
import re
import sys
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

from rbio.sources import GO_SOURCES

TAG_KINDS: tuple[str, ...] = ("think", "answer", "gene_info")
TAG_RE = re.compile(r"<(/?)(think|answer|gene_info)>", re.IGNORECASE)
WORD_RE = re.compile(r"\w+")
# Letters only: "yes." / "**no**" / "no," all reduce to the bare word.
_LETTER_WORD_RE = re.compile(r"[^\W\d_]+")

Answer = Literal["yes", "no"]


class Tag(NamedTuple):  # a NamedTuple: built for every tag of every completion, so cheap
    kind: str  # lower-case tag name
    closing: bool
    start: int
    end: int


class Block(NamedTuple):
    """``<kind>content</kind>``; ``content_start:content_end`` slices the content out of the text."""

    kind: str
    open_index: int  # position of the opening tag in ``ParsedCompletion.tags``
    close_index: int
    content_start: int
    content_end: int

    @property
    def has_inner_tags(self) -> bool:
        return self.close_index - self.open_index > 1


@dataclass(frozen=True)
class ParsedCompletion:
    text: str
    tags: tuple[Tag, ...]
    blocks: tuple[Block, ...]  # ordered by position of the opening tag

    @cached_property
    def word_count(self) -> int:
        """Words (``\\w+``) outside tag markers (computed on first use: only format needs it)."""
        return len(WORD_RE.findall(TAG_RE.sub(" ", self.text) if self.tags else self.text))

    @cached_property
    def tagged_word_count(self) -> int:
        """Of :attr:`word_count`, the words inside at least one block (nested blocks once)."""
        return sum(
            len(WORD_RE.findall(TAG_RE.sub(" ", self.text[start:end])))
            for start, end in _merged_spans(self.blocks)
        )

    def blocks_of(self, kind: str) -> list[Block]:
        return [block for block in self.blocks if block.kind == kind]

    def openings(self, kind: str) -> list[Tag]:
        return [tag for tag in self.tags if tag.kind == kind and not tag.closing]

    def closings(self, kind: str) -> list[Tag]:
        return [tag for tag in self.tags if tag.kind == kind and tag.closing]

    def section(self, kind: str) -> str:
        """Contents of every ``kind`` block, joined by newlines, inner tag markers blanked."""
        parts = [
            TAG_RE.sub(" ", self.text[block.content_start : block.content_end])
            for block in self.blocks
            if block.kind == kind
        ]
        return "\n".join(parts)


def completion_text(completion: Any) -> str:
    """The generated text of one completion, plain or conversational.

    TRL passes a string per completion, or (conversational datasets) a list of messages such as
    ``[{"role": "assistant", "content": "..."}]``. The assistant messages' contents are joined;
    content given as a list of parts (``{"type": "text", "text": ...}``) is flattened; ``None``
    is the empty string.

    >>> completion_text([{"role": "assistant", "content": "<answer>no</answer>"}])
    '<answer>no</answer>'
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _message_content(completion)
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        return "".join(_message_content(m) for m in (assistant or messages))
    raise TypeError(
        f"a completion must be a string or a list of messages, got {type(completion).__name__}"
    )


def _message_content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text") or "") if isinstance(part, Mapping) else str(part)
            for part in content
        )
    return str(content)


class ParseCache:
    """Least-recently-used parses, bounded by entries and by an estimate of the memory they hold.

    An entry's weight is its text's size plus :data:`BYTES_PER_TAG` per tag (a ``Tag``, its share
    of a ``Block`` and their integers, measured with tracemalloc at ~230 bytes). Bounding only the
    number of entries is not enough: a 100k-character completion of tags holds ~3.5 MB of
    parse, so 512 of them pinned ~1.5 GB. A text heavier than ``max_entry_bytes`` is parsed but
    not kept. The rewards of one GRPO step parse the same batch one reward after another, so the
    bound must hold a batch: the defaults keep 4096 ordinary completions (a few kB each).
    """

    BYTES_PER_TAG = 256

    def __init__(
        self, max_entries: int = 4096, max_bytes: int = 64 << 20, max_entry_bytes: int = 8 << 20
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[str, tuple[ParsedCompletion, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, text: str) -> ParsedCompletion:
        # A hit takes no lock: OrderedDict.get and move_to_end are atomic under the GIL, and an
        # entry evicted in between by another thread only loses its recency.
        entries = self._entries
        entry = entries.get(text)
        if entry is not None:
            try:  # noqa: SIM105 - contextlib.suppress would double the cost of a hit
                entries.move_to_end(text)
            except KeyError:
                pass
            return entry[0]
        parsed = _parse(text)
        weight = sys.getsizeof(text) + self.BYTES_PER_TAG * len(parsed.tags)
        if weight > self.max_entry_bytes:
            return parsed
        with self._lock:
            if text not in self._entries:
                self._entries[text] = (parsed, weight)
                self.bytes += weight
                while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self.bytes -= dropped
        return parsed

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


PARSE_CACHE = ParseCache()


def parse_completion(text: str) -> ParsedCompletion:
    """Tags, blocks and word counts of one completion text (cached in :data:`PARSE_CACHE`:
    the rewards share the parse)."""
    return PARSE_CACHE.get(text)


def _parse(text: str) -> ParsedCompletion:
    tags = tuple(Tag(m[2].lower(), m[1] == "/", m.start(), m.end()) for m in TAG_RE.finditer(text))
    return ParsedCompletion(text=text, tags=tags, blocks=_find_blocks(tags))


def _find_blocks(tags: tuple[Tag, ...]) -> tuple[Block, ...]:
    # For each kind: the next closing tag of that kind at or after each index (len = none).
    next_close: dict[str, list[int]] = {}
    for kind in TAG_KINDS:
        following = [len(tags)] * (len(tags) + 1)
        for index in range(len(tags) - 1, -1, -1):
            tag = tags[index]
            following[index] = index if tag.kind == kind and tag.closing else following[index + 1]
        next_close[kind] = following
    blocks: list[Block] = []
    for kind in TAG_KINDS:
        index = 0
        while index < len(tags):
            tag = tags[index]
            if tag.kind == kind and not tag.closing:
                close = next_close[kind][index + 1]
                if close == len(tags):
                    break  # no closing tag of this kind later: no further block of this kind
                blocks.append(
                    Block(
                        kind=kind,
                        open_index=index,
                        close_index=close,
                        content_start=tag.end,
                        content_end=tags[close].start,
                    )
                )
                index = close + 1
            else:
                index += 1
    blocks.sort(key=lambda block: block.open_index)
    return tuple(blocks)


def _merged_spans(blocks: tuple[Block, ...]) -> list[tuple[int, int]]:
    spans = sorted((block.content_start, block.content_end) for block in blocks)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def parse_answer(text: str | None) -> Answer | None:
    """The single yes/no a completion answers, or None when there is not exactly one.

    ``text`` is the completion's text; ``None`` (no completion, e.g. a failed generation) is an
    unparseable answer, None, like the empty string; a list of messages is read with
    :func:`completion_text`. Rules, applied in order (deterministic, so training and
    evaluation agree):

    1. exactly one ``<answer>`` opening tag and a matching ``</answer>`` after it; otherwise
       None (no answer, two answers, ``</answer>yes<answer>``);
    2. the answer holds no other tag (``<answer><think>…</think>yes</answer>`` is None);
    3. its text is NFKC-normalised (full-width ``ｙｅｓ`` becomes ``yes``) and case-folded, and
       split into words of letters only, which drops punctuation and markdown (``Yes.``,
       ``**no**``);
    4. "yes" if the word "yes" occurs and "no" does not, "no" for the reverse, else None
       (``yes and no``, ``yes/no``, empty, ``nope``, look-alike letters from other scripts).

    Where the answer sits relative to ``<think>`` is the format reward's business, not this one.

    >>> parse_answer("<think>x</think><answer>**No**</answer>")
    'no'
    >>> parse_answer("<think>x</think><answer>The answer is YES.</answer>")
    'yes'
    >>> parse_answer("</answer>yes<answer>") is None
    True
    >>> parse_answer(None) is None
    True
    """
    if not isinstance(text, str):
        text = completion_text(text)
    parsed = parse_completion(text)
    if len(parsed.openings("answer")) != 1:
        return None
    blocks = parsed.blocks_of("answer")
    if len(blocks) != 1 or blocks[0].has_inner_tags:
        return None
    block = blocks[0]
    return classify_answer_text(text[block.content_start : block.content_end])


def parse_answer_strict(text: str | None) -> Answer | None:
    """The paper benchmark's reading: a bare yes/no inside the *first* ``<answer>`` block.

    The content of the first ``<answer>…</answer>`` block, stripped of surrounding whitespace
    and lower-cased, must be exactly "yes" or "no"; anything else (punctuation, markdown, other
    words, inner tags, no block) is unreadable, None. Later answer blocks are ignored, as the
    authors' benchmark reads only the first. ``None`` and message lists are read as in
    :func:`parse_answer`.

    >>> parse_answer_strict("<think>x</think><answer> Yes </answer>")
    'yes'
    >>> parse_answer_strict("<answer>Yes.</answer>") is None, parse_answer("<answer>Yes.</answer>")
    (True, 'yes')
    >>> parse_answer_strict("<answer>**No**</answer>") is None
    True
    >>> parse_answer_strict("<answer>no</answer><answer>yes</answer>")
    'no'
    >>> parse_answer_strict("yes") is None
    True
    """
    if not isinstance(text, str):
        text = completion_text(text)
    blocks = parse_completion(text).blocks_of("answer")
    if not blocks:
        return None
    content = text[blocks[0].content_start : blocks[0].content_end].strip().lower()
    return content if content in ("yes", "no") else None  # type: ignore[return-value]


def classify_answer_text(answer_text: str) -> Answer | None:
    """Rules 3–4 of :func:`parse_answer` applied to the text inside ``<answer>``.

    >>> classify_answer_text("  Yes! ")
    'yes'
    """
    words = set(_LETTER_WORD_RE.findall(unicodedata.normalize("NFKC", answer_text).casefold()))
    says_yes, says_no = "yes" in words, "no" in words
    if says_yes and not says_no:
        return "yes"
    if says_no and not says_yes:
        return "no"
    return None


def column(kwargs: Mapping[str, Any], name: str, n: int, reward: str) -> Sequence[Any]:
    """A dataset column passed to a reward, checked to have one value per completion."""
    if name not in kwargs or kwargs[name] is None:
        raise KeyError(
            f"reward '{reward}' needs the dataset column '{name}'; "
            f"columns given: {sorted(k for k in kwargs if k not in ('trainer_state',))}"
        )
    values = kwargs[name]
    if len(values) != n:
        raise ValueError(
            f"reward '{reward}': column '{name}' has {len(values)} values for {n} completions"
        )
    return values


def optional_column(kwargs: Mapping[str, Any], name: str, n: int) -> Sequence[Any]:
    """A dataset column, or ``None`` for every completion when it is absent."""
    values = kwargs.get(name)
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"column '{name}' has {len(values)} values for {n} completions")
    return values


def is_go_source(source: Any) -> bool:
    return isinstance(source, str) and source in GO_SOURCES


def is_missing(value: Any) -> bool:
    """None, a NaN (Python, numpy) or pandas' NA / NaT: a cell with no value.

    >>> import math
    >>> [is_missing(v) for v in (None, math.nan, float("nan"), 0.0, "", [])]
    [True, True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, numbers.Number):
        return bool(value != value)  # NaN is the one number unequal to itself
    if type(value).__module__.startswith("pandas"):
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    return False


def string_list(value: Any, name: str = "value", row: int | None = None) -> tuple[str, ...]:
    """A list-of-strings column value as a tuple without empty strings.

    Accepts lists, tuples, numpy arrays (what ``datasets`` may hand over), a ``|``-joined string
    (the authors' CSV format) and a missing value (None, NaN, pandas NA: what a missing list
    becomes in a pandas frame), which is the empty tuple, like an empty list; missing items are
    dropped. Any other value (a number, a mapping) is a data error: the ValueError names the
    column ``name`` and the ``row``.

    >>> string_list(["TP53", None, float("nan"), " MDM2 "])
    ('TP53', 'MDM2')
    >>> string_list(float("nan"))
    ()
    >>> string_list(3.5, "keywords", 7)
    Traceback (most recent call last):
    ...
    ValueError: column 'keywords', row 7: expected a list of strings, ... got float 3.5
    """
    if isinstance(value, str):
        items: Sequence[Any] = value.split("|")
    elif is_missing(value):
        return ()
    elif isinstance(value, Mapping) or not isinstance(value, Iterable):
        where = f"column '{name}'" + (f", row {row}" if row is not None else "")
        raise ValueError(
            f"{where}: expected a list of strings, a '|'-joined string or a missing value, "
            f"got {type(value).__name__} {value!r:.80}"
        )
    else:
        items = list(value)
    return tuple(text for item in items if not is_missing(item) and (text := str(item).strip()))
