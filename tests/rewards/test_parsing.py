from __future__ import annotations

import pytest

from rbio.rewards.parsing import (
    completion_text,
    parse_answer,
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
    ],
)
def test_parse_answer(text: str, expected: str | None) -> None:
    assert parse_answer(text) == expected


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
