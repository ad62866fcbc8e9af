"""No row of a held-out cell line reaches any SFT or GRPO training set (tiny preset, real data).

For each leave-one-cell-line-out split of the tiny preset, every prompt source's dataset is built
from the split's training rows as the prompt stage builds it, then every variant's GRPO training
set and SFT set. The verifier outputs are stand-ins that deliberately cover *every* row of the
PerturbQA table, held-out line included (the MLP scores, the GO terms): only the split discipline
may keep those rows out. A negative control shows the check does catch a held-out row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rbio.data.ingest import ingest_perturbqa
from rbio.data.prompts import cell_line_name, save_prompt_dataset
from rbio.data.splits import make_split
from rbio.sources import SOURCES
from rbio.training.mixture import build_training_set
from rbio.training.sft import sft_dataset
from tests.training.conftest import tiny_config

CFG = tiny_config()


@pytest.fixture(scope="module")
def table(data_dir) -> pd.DataFrame:
    lines = CFG.data.cell_lines
    tables = {
        line: (
            data_dir / "perturbqa" / f"{line}-de.csv",
            data_dir / "perturbqa" / f"{line}-dir.csv",
        )
        for line in lines
    }
    aliases = data_dir / "hgnc_aliases" / "hgnc_alias_to_approved.tsv.gz"
    return ingest_perturbqa(tables, aliases)[0]


def stand_in_verifier_outputs(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Verifier outputs over the whole table, held-out rows included (the worst case)."""
    rng = np.random.default_rng(0)
    genes = sorted(set(table["pert"]) | set(table["gene"]))
    scores = table[["cell_line", "pert", "gene"]].assign(score=rng.random(len(table)))
    go_index = pd.DataFrame(
        [(g, aspect, f"{aspect} term {i % 7}") for i, g in enumerate(genes) for aspect in "CFP"],
        columns=["gene", "aspect", "go_name"],
    )
    pairs = rng.choice(len(genes), size=(512, 2))
    questions = pd.DataFrame(
        {
            "gene_a": [genes[a] for a in pairs[:, 0]],
            "gene_b": [genes[b] for b in pairs[:, 1]],
            "label": np.arange(512) % 2,
            "confidence": rng.random(512),
        }
    )
    return {"mlp_scores": scores, "go_index": go_index, "tf_questions": questions}


USED_SOURCES = sorted({source for variant in CFG.variants.values() for source in variant.sources})


def prompt_dirs(
    train: pd.DataFrame, outputs: dict[str, pd.DataFrame], tmp_path, used=USED_SOURCES
) -> dict[str, str]:
    """The sources' prompt datasets for one split's training rows, as build_prompts writes them."""
    dirs = {}
    for source in used:
        declared = SOURCES[source].verifier_outputs
        frame = SOURCES[source].prompts(
            train,
            CFG.prompts,
            seed=CFG.seed,
            go=CFG.verifiers.go,
            mlp_confidence=CFG.verifiers.mlp.confidence,
            verifier_outputs={name: outputs[name] for name in declared},
        )
        dirs[source] = str(tmp_path / source)
        save_prompt_dataset(frame, dirs[source], {})
    return dirs


def assert_no_held_out_row(dataset, held_out: list[str], test_keys: set[tuple[str, str, str]]):
    """No row of a held-out line, no test row's (cell line, pert, gene), no held-out line's name
    in any prompt or SFT completion."""
    names = {cell_line_name(line) for line in held_out}
    assert not names & set(dataset["cell_line"]), f"rows of held-out line(s) {names}"
    keys = zip(dataset["cell_line"], dataset["pert"], dataset["gene"], strict=True)
    leaked = [key for key in keys if key in test_keys]
    assert not leaked, f"{len(leaked)} test row(s) in a training set, e.g. {leaked[0]}"
    texts = [message["content"] for prompt in dataset["prompt"] for message in prompt]
    if "completion" in dataset.column_names:
        texts += [message["content"] for turn in dataset["completion"] for message in turn]
    named = [text for text in texts if any(f"{name} cells" in text for name in names)]
    assert not named, f"a held-out line is named in: {named[0]!r}"


@pytest.mark.parametrize("split", [f"loco_{line}" for line in CFG.splits.loco])
def test_no_held_out_row_reaches_sft_or_grpo(table, split, tmp_path):
    train, test, _, report = make_split(table, split, CFG.data.cell_lines)
    held_out = report["test_lines"]
    test_keys = {
        (cell_line_name(c), p, g)
        for c, p, g in zip(test["cell_line"], test["pert"], test["gene"], strict=True)
    }
    dirs = prompt_dirs(train, stand_in_verifier_outputs(table), tmp_path)
    for variant in CFG.variants.values():
        sources = {source: dirs[source] for source in variant.sources}
        grpo, _ = build_training_set(sources, variant.sources, CFG.seed)
        sft, _ = sft_dataset(sources, variant, CFG.seed)
        # The SFT set holds the GRPO set's rows (and its completions): checked in full.
        assert sft["cell_line"] == grpo["cell_line"] and sft["pert"] == grpo["pert"]
        assert_no_held_out_row(sft, held_out, test_keys)

    # Negative control: prompts built from the test rows are caught.
    leaky = prompt_dirs(test, {}, tmp_path / "leaky", used=["exp"])
    dataset, _ = sft_dataset(leaky, CFG.variants["EXP"], CFG.seed)
    with pytest.raises(AssertionError, match="held-out line"):
        assert_no_held_out_row(dataset, held_out, test_keys)
