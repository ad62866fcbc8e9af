from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from rbio.rewards import parsing
from rbio.rewards.answer import answer
from rbio.rewards.go import GoKeywordReward, GoRougeReward
from rbio.rewards.mention import mention
from rbio.rewards.parsing import (
    ParseCache,
    completion_text,
    parse_answer,
    parse_answer_strict,
    parse_completion,
    string_list,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>yes</answer>", "yes"),
        ("<think>x</think><answer>Yes.</answer>", "yes"),
        ("<answer>**no**</answer>", "no"),
        ("<answer>NO</answer>", "no"),
        ("<ANSWER>Yes</ANSWER>", "yes"),
        ("<answer>The answer is: yes!</answer>", "yes"),
        ("<answer>Yes, knockdown of TP53 changes MDM2.</answer>", "yes"),
        ("<answer>no\u2014unlikely</answer>", "no"),
        ("<answer>\u00a0yes\u00a0</answer>", "yes"),
        ("<answer>\uff59\uff45\uff53</answer>", "yes"),  # full-width letters
        ("<think>The answer is yes</think><answer>no</answer>", "no"),
        ("<answer>yes</answer><think>late thinking</think>", "yes"),  # order is format's job
        ("<answer>yes and no</answer>", None),
        ("<answer>yes/no</answer>", None),
        ("<answer></answer>", None),
        ("<answer>   </answer>", None),
        ("", None),
        ("yes", None),
        ("</answer>yes<answer>", None),
        ("<answer>yes", None),
        ("yes</answer>", None),
        ("<answer>yes</answer><answer>yes</answer>", None),
        ("<answer>yes</answer><answer>no</answer>", None),
        ("<answer><answer>yes</answer>", None),
        ("<answer><think>x</think>yes</answer>", None),
        ("<answer>Y\u0435s</answer>", None),  # Cyrillic e
        ("<answer>nope</answer>", None),
        ("<answer>not likely</answer>", None),
        ("<answer>yesno</answer>", None),
        ("<answer>S\u00ed</answer>", None),
        ("< answer >yes</ answer >", None),
        (None, None),  # no completion: unparseable, like ""
        ([{"role": "assistant", "content": "<answer>no</answer>"}], "no"),
    ],
)
def test_parse_answer(text: str, expected: str | None) -> None:
    assert parse_answer(text) == expected


# (completion, strict reading, lenient reading): the two evaluation protocols side by side.
@pytest.mark.parametrize(
    ("text", "strict", "lenient"),
    [
        ("<answer>yes</answer>", "yes", "yes"),
        ("<think>x</think><answer>  No\n</answer>", "no", "no"),
        ("<ANSWER>YES</ANSWER>", "yes", "yes"),
        ("<answer>Yes.</answer>", None, "yes"),
        ("<answer>**No**</answer>", None, "no"),
        ("<answer>The answer is yes</answer>", None, "yes"),
        ("<answer>yes</answer><answer>no</answer>", "yes", None),  # strict: the first block
        ("<answer>no</answer><answer>no</answer>", "no", None),
        ("<answer><think>x</think>yes</answer>", None, None),
        ("<answer>yes", None, None),
        ("</answer>yes<answer>", None, None),
        ("yes", None, None),
        ("", None, None),
        (None, None, None),
        ([{"role": "assistant", "content": "<answer>no</answer>"}], "no", "no"),
    ],
)
def test_strict_and_lenient_readings(text, strict, lenient) -> None:
    assert parse_answer_strict(text) == strict
    assert parse_answer(text) == lenient


def test_completion_text_forms() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text(None) == ""
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": None}]) == ""
    assert completion_text({"role": "assistant", "content": "b"}) == "b"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text"}]}]
    assert completion_text(parts) == "c"
    tool_and_answer = [
        {"role": "tool", "content": "ignored"},
        {"role": "assistant", "content": "x"},
        {"role": "assistant", "content": "y"},
    ]
    assert completion_text(tool_and_answer) == "xy"
    assert completion_text([]) == ""
    with pytest.raises(TypeError, match="string or a list of messages"):
        completion_text(3)


def test_blocks_are_non_greedy_per_kind() -> None:
    parsed = parse_completion("<think>a<think>b</think>c</think><answer>y</answer>")
    thinks = parsed.blocks_of("think")
    assert len(thinks) == 1
    assert parsed.text[thinks[0].content_start : thinks[0].content_end] == "a<think>b"
    assert thinks[0].has_inner_tags
    assert parsed.section("think") == "a b"  # inner tag markers blanked
    assert parsed.section("answer") == "y"


def test_word_counts_do_not_double_count_nested_blocks() -> None:
    parsed = parse_completion("pre <answer><think>x y</think></answer> post")
    assert parsed.word_count == 4
    assert parsed.tagged_word_count == 2


def test_string_list() -> None:
    assert string_list(None) == ()
    assert string_list(["a", "", " b ", None]) == ("a", "b")
    assert string_list("TP53|MDM2|") == ("TP53", "MDM2")
    assert string_list(("x",)) == ("x",)
    assert string_list(np.array(["a", "b"])) == ("a", "b")


@pytest.mark.parametrize("missing", [None, math.nan, np.float32("nan"), pd.NA, pd.NaT])
def test_missing_list_cells_are_empty_lists(missing) -> None:
    assert string_list(missing) == ()
    assert string_list(["TP53", missing]) == ("TP53",)
    assert mention(["<think>TP53</think>"], keywords=[missing]) == [None]
    assert mention(["<think>TP53</think>"], keywords=[["TP53", missing]]) == [1.0]
    # Like an empty list: the gene is unannotated; the other gene still scores.
    row = {"pert": ["TP53"], "gene": ["MDM2"], "source": ["go"]}
    info = "<gene_info>DNA binding</gene_info>"
    for reward in (GoKeywordReward(), GoRougeReward()):
        assert reward([info], pert_go_terms=[missing], gene_go_terms=[missing], **row) == [None]
        terms = {"pert_go_terms": [["DNA binding"]], "gene_go_terms": [missing]}
        assert reward([info], **terms, **row) == [1.0]


@pytest.mark.parametrize("bad", [3.5, 0, True, {"a": 1}])
def test_a_non_list_cell_names_the_column_and_the_row(bad) -> None:
    with pytest.raises(ValueError, match=r"column 'keywords', row 1: expected a list of strings"):
        mention(["a", "b"], keywords=[["TP53"], bad])
    with pytest.raises(ValueError, match=r"column 'gene_go_terms', row 0: .* got "):
        GoRougeReward()(["<gene_info>x</gene_info>"], pert_go_terms=[[]], gene_go_terms=[bad])


def test_none_completions_have_defined_rewards() -> None:
    # No completion is no answer: the answer reward's 0 (None stays "no verifier for this row").
    assert answer(
        [None, None, "<answer>yes</answer>"],
        classes=["no|yes"] * 3,
        class_confidences=["0.2|0.8", "", math.nan],
    ) == [0.0, None, None]
    assert mention([None], keywords=[["TP53"]]) == [0.0]
    assert GoRougeReward()([None], pert_go_terms=[["nucleus"]], gene_go_terms=[[]]) == [0.0]


def _tag_heavy(n_chars: int, seed: int) -> str:
    unit = f"<think>{seed}</think><answer>"
    return (unit * (n_chars // len(unit) + 1))[:n_chars]


def test_parse_cache_is_bounded_by_entries() -> None:
    cache = ParseCache(max_entries=3)
    texts = [f"<think>{i}</think><answer>yes</answer>" for i in range(5)]
    for text in texts:
        assert cache.get(text) == parsing._parse(text)
    assert len(cache) == 3
    assert cache.get(texts[4]) is cache.get(texts[4])  # kept
    first = cache.get(texts[0])  # evicted earlier: parsed again, equal
    assert first == parsing._parse(texts[0]) and len(cache) == 3
    cache.get(texts[2])  # recently used: survives the next insertion
    cache.get("<answer>no</answer>")
    assert texts[2] in cache._entries and texts[3] not in cache._entries


def test_parse_cache_is_bounded_by_weight_and_skips_huge_texts() -> None:
    cache = ParseCache(max_entries=1000, max_bytes=2 << 20, max_entry_bytes=1 << 20)
    text = _tag_heavy(20_000, 0)  # ~2,000 tags: ~0.5 MB of parse
    parsed = cache.get(text)
    assert cache.bytes > ParseCache.BYTES_PER_TAG * len(parsed.tags) > 0
    for seed in range(1, 20):
        cache.get(_tag_heavy(20_000, seed))
    assert 0 < cache.bytes <= 2 << 20 and len(cache) < 20
    huge = _tag_heavy(100_000, 99)  # ~10,000 tags: over max_entry_bytes, parsed but not kept
    assert cache.get(huge).tags == parsing._parse(huge).tags
    assert huge not in cache._entries
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0


def test_parse_cache_memory_stays_under_its_bound() -> None:
    """What the cache pins, measured, stays under its byte bound after tag-heavy completions
    (the former 512-entry cache pinned ~3.5 MB per 100k-character completion of tags)."""
    cache = ParseCache(max_bytes=4 << 20)
    texts = [_tag_heavy(40_000, seed) for seed in range(8)]  # ~4,000 tags, ~1 MB of parse each
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for text in texts:
            parsed = cache.get(text)
            _ = parsed.word_count, parsed.tagged_word_count
        del parsed
        pinned = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0 < cache.bytes <= cache.max_bytes
    assert len(cache) < len(texts)
    assert pinned <= cache.max_bytes
