from __future__ import annotations

import pytest

from rbio.rewards.answer import answer, class_confidences
from rbio.rewards.mention import mention


def _rows(n: int, classes: str = "no|yes", confidences: str = "0.23|0.77") -> dict:
    return {"classes": [classes] * n, "class_confidences": [confidences] * n}


def test_answer_reads_confidence_of_answered_class() -> None:
    completions = [
        "<think>t</think><answer>yes</answer>",
        "<think>t</think><answer>No.</answer>",
        "<think>t</think><answer>yes and no</answer>",
        "<think>t</think>",
        "",
    ]
    assert answer(completions, **_rows(5)) == [0.77, 0.23, 0.0, 0.0, 0.0]


def test_answer_hard_labels_and_class_order() -> None:
    assert answer(["<answer>no</answer>"], **_rows(1, confidences="1|0")) == [1.0]
    assert answer(["<answer>no</answer>"], **_rows(1, "Yes | No", "0.6|0.4")) == [0.4]


def test_answer_none_without_verifier() -> None:
    rows = {"classes": ["no|yes", "no|yes", ""], "class_confidences": ["", None, ""]}
    assert answer(["<answer>yes</answer>"] * 3, **rows) == [None, None, None]


def test_answer_conversational() -> None:
    completion = [[{"role": "assistant", "content": "<answer>yes</answer>"}]]
    assert answer(completion, **_rows(1)) == [0.77]


def test_answer_class_not_offered() -> None:
    assert answer(["<answer>yes</answer>"], **_rows(1, "up|down", "0.5|0.5")) == [0.0]


def test_answer_bad_columns() -> None:
    with pytest.raises(KeyError, match="class_confidences"):
        answer(["<answer>yes</answer>"], classes=["no|yes"])
    bad = {"classes": ["no|yes", "no|yes"], "class_confidences": ["0.5|0.5", "0.5|1.5"]}
    with pytest.raises(ValueError, match=r"row 1: .*\[0, 1\]"):
        answer(["a", "b"], **bad)
    with pytest.raises(ValueError, match="do not pair up"):
        class_confidences("no|yes", "1")
    with pytest.raises(ValueError, match="non-number"):
        class_confidences("no|yes", "a|b")
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        answer(["a"], classes=["no|yes"] * 2, class_confidences=["1|0"] * 2)


def test_mention_whole_words_case_insensitive() -> None:
    keywords = [["TP53", "MDM2"]] * 6
    completions = [
        "<think>tp53 binds Mdm2.</think><answer>yes</answer>",
        "<think>TP53-dependent</think>",
        "<think>TP531 and MDM22</think>",
        "TP53 MDM2 outside <think>nothing</think>",
        "<think>TP53 unclosed",
        "<think>MDM2</think> and <think>TP53</think>",
    ]
    assert mention(completions, keywords=keywords) == [1.0, 0.5, 0.0, 0.0, 0.0, 1.0]


def test_mention_keyword_forms() -> None:
    text = "<think>The HLA-A locus and C1orf43(x)</think>"
    assert mention([text], keywords=["HLA-A|C1orf43(x)"]) == [1.0]
    assert mention(["<think>HLA-A2</think>"], keywords=[["HLA-A"]]) == [0.0]
    assert mention([text, text], keywords=[[], None]) == [None, None]
    assert mention(["<think>TP53</think>"], keywords=[["TP53", "tp53"]]) == [1.0]  # deduplicated


def test_mention_needs_keywords_column() -> None:
    with pytest.raises(KeyError, match="keywords"):
        mention(["x"])
