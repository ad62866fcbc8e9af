from __future__ import annotations

import pytest

from rbio.rewards.format import FormatReward, format_reward

GOOD = "<think>TP53 is a tumour suppressor.</think><answer>yes</answer>"
GOOD_GO = "<gene_info>TP53: DNA binding.</gene_info><think>So yes.</think><answer>yes</answer>"


def test_name() -> None:
    assert format_reward.__name__ == "format"


def test_perfect_completions_score_one() -> None:
    assert format_reward([GOOD]) == [1.0]
    assert format_reward([GOOD_GO], source=["go"]) == [1.0]
    assert format_reward(["  \n" + GOOD + "\n "]) == [1.0]
    assert format_reward([GOOD.upper()]) == [1.0]  # tags match case-insensitively


def test_conversational_and_plain_agree() -> None:
    conversational = [[{"role": "assistant", "content": GOOD}]]
    assert format_reward(conversational) == format_reward([GOOD]) == [1.0]


def test_layout_depends_on_source() -> None:
    checks = format_reward.checks(GOOD_GO, go_layout=False)
    assert checks["starts_with_think"] == 0.0
    assert format_reward([GOOD_GO, GOOD_GO], source=["exp", "go_p"]) == [10 / 11, 1.0]
    # a label-style completion on a GO row misses the gene_info-first check
    assert format_reward([GOOD], source=["go_c"]) == [10 / 11]
    assert format_reward.checks(GOOD, go_layout=True)["gene_info_first"] == 0.0
    # gene_info present but not first
    late = "<think>a</think><gene_info>b</gene_info><think>c</think><answer>yes</answer>"
    assert format_reward.checks(late, go_layout=True)["gene_info_first"] == 0.0
    # gene_info first but not followed by <think>
    no_think = "<gene_info>b</gene_info><answer>yes</answer>"
    assert format_reward.checks(no_think, go_layout=True)["gene_info_first"] == 0.0


def test_missing_answer() -> None:
    # passes: has_think, share, length, think text, no nesting, few thinks, balanced, starts
    assert format_reward(["<think>short</think>"]) == [8 / 11]


def test_untagged_words_lower_the_share() -> None:
    text = "Intro words here <think>a b</think> <answer>no</answer> trailing"
    checks = format_reward.checks(text)
    assert checks["tagged_word_share"] == 3 / 7
    assert checks["ends_with_answer"] == 0.0
    assert checks["starts_with_think"] == 0.0
    assert format_reward([text]) == [(8 + 3 / 7) / 11]


def test_nested_answer_inside_think() -> None:
    text = "<think>x <answer>yes</answer></think><answer>yes</answer>"
    checks = format_reward.checks(text)
    assert checks == {
        "has_think": 1.0,
        "tagged_word_share": 1.0,
        "within_length": 1.0,
        "one_answer": 0.0,
        "answer_after_think": 0.0,
        "think_has_text": 1.0,
        "no_nested_tags": 0.0,
        "few_thinks": 1.0,
        "tags_balanced": 1.0,
        "ends_with_answer": 1.0,
        "starts_with_think": 1.0,
    }
    assert format_reward([text]) == [8 / 11]


def test_too_many_thinks_and_too_long() -> None:
    four = "".join(f"<think>{c}</think>" for c in "abcd") + "<answer>yes</answer>"
    assert format_reward([four]) == [10 / 11]
    assert FormatReward(max_thinks=4)([four]) == [1.0]
    long = "<think>" + "word " * 250 + "</think><answer>yes</answer>"
    assert format_reward([long]) == [10 / 11]
    assert FormatReward(max_words=300)([long]) == [1.0]


def test_unclosed_think() -> None:
    text = "<think>abc <answer>yes</answer>"
    checks = format_reward.checks(text)
    assert checks["has_think"] == 0.0
    assert checks["tagged_word_share"] == 0.5
    assert checks["tags_balanced"] == 0.0
    assert checks["few_thinks"] == 1.0  # one <think> opening tag
    assert format_reward([text]) == [6.5 / 11]


def test_empty_think_and_crossed_tags() -> None:
    assert format_reward.checks("<think>  </think><answer>no</answer>")["think_has_text"] == 0.0
    crossed = "<think>a<answer>b</think>yes</answer>"
    assert format_reward.checks(crossed)["tags_balanced"] == 0.0


def test_tag_free_and_empty() -> None:
    assert format_reward(["", "yes"]) == [1 / 11, 1 / 11]  # only the length check passes


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="max_words"):
        FormatReward(max_words=0)
