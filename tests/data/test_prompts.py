from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rbio.config_file import read_config
from rbio.data.prompts import (
    DE_TEMPLATES,
    PROMPT_COLUMNS,
    SYSTEM_PROMPTS,
    assign_templates,
    build_messages,
    sample_balanced,
)
from rbio.sources import SOURCES
from tests.helpers import REPO, TINY


@pytest.fixture(scope="module")
def config():
    return read_config(REPO / "config.yaml", TINY)


def training_rows(n: int = 400, positive_rate: float = 0.15, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cell_line": rng.choice(["rpe1", "hepg2"], n),
            "pert": [f"P{i % 37}" for i in range(n)],
            "gene": [f"G{i}" for i in range(n)],
            "label": (rng.random(n) < positive_rate).astype(np.int8),
        }
    )


def test_messages_follow_the_paper_question():
    messages = build_messages("AAMP", "ANKHD1", "k562")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == (
        "Is a knockdown of AAMP in K562 cells likely to result in differential expression of "
        "ANKHD1? The answer is either yes or no."
    )
    assert "<think>" in messages[0]["content"] and "<answer>" in messages[0]["content"]
    assert build_messages("A", "B", "k562", "cot")[0]["content"].startswith(SYSTEM_PROMPTS["nocot"])
    with pytest.raises(ValueError, match="valid"):
        build_messages("A", "B", "k562", "shouty")


def test_balanced_sampling_is_fifty_fifty_and_seeded():
    rows = training_rows()
    sample = sample_balanced(rows, "label", limit=None, balanced=True, seed=1)
    assert sample["label"].mean() == 0.5
    assert len(sample) == 2 * rows["label"].sum()
    assert sample.equals(sample_balanced(rows, "label", limit=None, balanced=True, seed=1))
    capped = sample_balanced(rows, "label", limit=20, balanced=True, seed=1)
    assert len(capped) == 20 and capped["label"].sum() == 10
    assert len(sample_balanced(rows, "label", limit=50, balanced=False, seed=1)) == 50


def _build(source, config, rows, mlp_confidence=None, **verifier_outputs):
    """The rule's call: the prompts section, the seed, the GO settings and the MLP confidence
    mapping of the config."""
    return SOURCES[source].prompts(
        rows,
        config.prompts,
        seed=config.seed,
        go=config.verifiers.go,
        mlp_confidence=mlp_confidence or config.verifiers.mlp.confidence,
        verifier_outputs=verifier_outputs,
    )


def test_negated_templates_flip_labels_and_confidences(config):
    rows = training_rows()
    frame = _build("exp", config, rows)
    assert list(frame.columns) == list(PROMPT_COLUMNS)
    source = rows.set_index(["pert", "gene"])["label"]
    de_labels = source.loc[list(zip(frame["pert"], frame["gene"], strict=True))].to_numpy()
    assert frame["negated"].any() and (~frame["negated"]).any()
    expected = np.where(frame["negated"], 1 - de_labels, de_labels)
    assert (frame["label"].to_numpy() == expected).all()
    # EXP confidences are one-hot on the expected answer: "p_no|p_yes"
    p_yes = frame["class_confidences"].str.split("|").str[1].astype(float)
    assert (p_yes == frame["label"]).all()
    for template_id, negated in zip(frame["template_id"], frame["negated"], strict=True):
        assert DE_TEMPLATES[template_id].negated == negated
    assert frame["keywords"].map(len).eq(2).all()


def test_base_templates_never_negate():
    ids = assign_templates(100, "base", negated_fraction=0.9, seed=0)
    assert (ids == 0).all()
    ids = assign_templates(4000, "paraphrases", negated_fraction=0.25, seed=0)
    share = np.mean([DE_TEMPLATES[i].negated for i in ids])
    assert 0.22 < share < 0.28


def test_mlp_source_uses_verifier_scores(config):
    rows = training_rows(n=200)
    scores = rows[["cell_line", "pert", "gene"]].assign(score=np.linspace(0.0, 1.0, len(rows)))
    frame = _build("mlp", config, rows, mlp_scores=scores)
    p_yes = frame["class_confidences"].str.split("|").str[1].astype(float)
    # the expected answer agrees with the verifier's confidence of "yes"
    assert ((p_yes >= 0.5) == (frame["label"] == 1)).all()
    with pytest.raises(ValueError, match="MLP scores miss 1 training pair"):
        _build("mlp", config, rows, mlp_scores=scores.iloc[1:])


# A worked example: three pairs the MLP verifier scores 0.2, 0.55 and 0.7.
WORKED_SCORES = {"G0": 0.2, "G1": 0.55, "G2": 0.7}
# rbio1 writes the verifier's probability as it is: "1-p|p" for "no|yes".
RAW = {"G0": "0.8|0.2", "G1": "0.45|0.55", "G2": "0.3|0.7"}
# threshold_centred: min–max on each side of 0.5 (no: 0.2 -> 0; yes: 0.55 -> 0.625, 0.7 -> 1).
THRESHOLD_CENTRED = {"G0": "1|0", "G1": "0.375|0.625", "G2": "0|1"}
FLIPPED = {"0.8|0.2": "0.2|0.8", "0.45|0.55": "0.55|0.45", "0.3|0.7": "0.7|0.3",
           "1|0": "0|1", "0.375|0.625": "0.625|0.375", "0|1": "1|0"}  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "expected"), [("raw", RAW), ("threshold_centred", THRESHOLD_CENTRED)]
)
@pytest.mark.parametrize("templates", ["base", "all_negated"])
def test_mlp_confidence_mappings_on_a_worked_example(config, mapping, expected, templates):
    # The experimental labels do not matter: the verifier's verdict (p >= 0.5) is the answer.
    rows = pd.DataFrame(
        {"cell_line": "k562", "pert": "P", "gene": list(WORKED_SCORES), "label": [1, 0, 0]}
    )
    scores = rows[["cell_line", "pert", "gene"]].assign(score=list(WORKED_SCORES.values()))
    questions = {"base": {"templates": "base"}, "all_negated": {"negated_fraction": 1.0}}
    settings = replace(config.prompts, balanced=False, **questions[templates])
    frame = SOURCES["mlp"].prompts(
        rows,
        settings,
        seed=0,
        mlp_confidence=mapping,
        verifier_outputs={"mlp_scores": scores},
    )
    written = dict(zip(frame["gene"], frame["class_confidences"], strict=True))
    if templates == "base":
        assert not frame["negated"].any()
        assert written == expected
    else:  # a negated question asks "not DE?": its "yes" is the verifier's "no"
        assert frame["negated"].all()
        assert written == {gene: FLIPPED[value] for gene, value in expected.items()}
        assert frame.set_index("gene")["label"].to_dict() == {"G0": 1, "G1": 0, "G2": 0}


def test_mlp_source_needs_the_confidence_mapping(config):
    rows = training_rows(n=20)
    scores = rows[["cell_line", "pert", "gene"]].assign(score=0.5)
    with pytest.raises(ValueError, match="verifiers.mlp.confidence"):
        SOURCES["mlp"].prompts(
            rows, config.prompts, seed=0, verifier_outputs={"mlp_scores": scores}
        )
    with pytest.raises(ValueError, match="unknown confidence mapping 'sigmoid'"):
        _build("mlp", config, rows, mlp_confidence="sigmoid", mlp_scores=scores)


def test_go_source_carries_terms_and_no_answer_verifier(config):
    rows = training_rows(n=100)
    index = pd.DataFrame(
        {
            "gene": ["P1", "P1", "G5"],
            "aspect": ["C", "F", "C"],
            "go_id": ["GO:1", "GO:2", "GO:3"],
            "go_name": ["nucleus", "ATP binding", "cytosol"],
        }
    )
    frame = _build("go_c", config, rows, go_index=index)
    assert len(frame) > 0
    assert (frame["class_confidences"] == "").all()
    assert frame["prompt"].map(lambda m: "<gene_info>" in m[0]["content"]).all()
    terms = dict(zip(frame["pert"], frame["pert_go_terms"], strict=False))
    if "P1" in terms:
        assert list(terms["P1"]) == ["nucleus"]  # go_c keeps the cellular component only


def test_tf_source_asks_the_coexpression_question(config):
    questions = pd.DataFrame(
        {
            "gene_a": ["A", "B", "C", "D"],
            "gene_b": ["E", "F", "G", "H"],
            "pmi": [3.0, 2.5, 0.0, -1.0],
            "label": [1, 1, 0, 0],
            "confidence": [0.9, 0.8, 0.2, 0.1],
        }
    )
    frame = _build("tf", config, pd.DataFrame(), tf_questions=questions)
    assert len(frame) == 4 and frame["label"].sum() == 2
    assert frame["prompt"].map(lambda m: "co-expressed" in m[1]["content"]).all()
    assert (frame["cell_line"] == "").all()
