"""The data and prompt stages through the real Snakemake on the real PerturbQA tables."""

import json

import pandas as pd
import pytest
from datasets import load_from_disk

from tests.helpers import run_workflow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("data_workflow")
    run_workflow(workdir, "data", "results/prompts/exp/loco_k562")
    return workdir


def test_data_target_builds_tidy_table_and_splits(workdir):
    table = pd.read_parquet(workdir / "results/data/perturbqa.parquet")
    assert table.groupby("cell_line").size().to_dict() == {
        "k562": 157_679,
        "rpe1": 187_089,
        "hepg2": 126_889,
        "jurkat": 142_822,
    }
    report = json.loads((workdir / "results/data/ingest_report.json").read_text())
    assert report["rows"] == len(table)
    leak = json.loads((workdir / "results/splits/loco_k562/leak_report.json").read_text())
    assert leak["test_rows_before_subsampling"] == 23_212  # METHOD.md: K562 test size
    train = pd.read_parquet(workdir / "results/splits/loco_k562/train.parquet")
    assert "k562" not in set(train["cell_line"])
    assert (workdir / "logs/data/ingest_perturbqa.log").exists()


def test_exp_prompt_dataset_is_balanced(workdir):
    dataset = load_from_disk(str(workdir / "results/prompts/exp/loco_k562"))
    assert len(dataset) == 256  # tiny preset: max_train_prompts
    assert (
        sum(dataset["label"]) == 128 or abs(sum(dataset["label"]) - 128) < 20
    )  # negation flips a random quarter
    summary = json.loads((workdir / "results/prompts/exp/loco_k562/summary.json").read_text())
    assert summary["prompts"] == 256


def test_rerun_has_nothing_to_do(workdir):
    result = run_workflow(workdir, "data", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        (
            {"variants": {"EXP": {"sources": {"exps": 1.0}}}},
            "variants.EXP.sources': unknown value(s) ['exps']",
        ),
        ({"data": {"cell_lines": ["k562", "hela"]}}, "data.cell_lines': unknown value(s) ['hela']"),
        ({"variant_splits": ["loco_mars"]}, "variant_splits': unknown value(s) ['loco_mars']"),
    ],
)
def test_bad_names_fail_at_parse_time(tmp_path, overlay, message):
    result = run_workflow(tmp_path, "all", "-n", extra_config=overlay, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_bad_input_stops_the_rule_with_file_and_line(tmp_path, data_dir):
    broken = tmp_path / "data"
    (broken / "perturbqa").mkdir(parents=True)
    for path in (data_dir / "perturbqa").glob("*.csv"):
        (broken / "perturbqa" / path.name).symlink_to(path)
    (broken / "hgnc_aliases").symlink_to(data_dir / "hgnc_aliases")
    (broken / "perturbqa" / "rpe1-de.csv").unlink()
    (broken / "perturbqa" / "rpe1-de.csv").write_text("pert,gene,label,split\nA,B,1,train\n")
    result = run_workflow(tmp_path / "wd", "data", env={"RBIO_DATA_DIR": str(broken)}, check=False)
    assert result.returncode != 0
    assert "rpe1-de.csv" in result.stdout + result.stderr
    assert "does not match the expected" in result.stdout + result.stderr


def test_changed_raw_copy_is_refused_at_ingest(tmp_path, data_dir):
    # Acquired copies that change later are not fetched again by Snakemake (the acquire rules
    # have no input): ingest must refuse them itself.
    raw = "results/data/raw"
    lines = ["k562", "rpe1", "hepg2", "jurkat"]  # the tiny preset's
    tables = [f"{raw}/perturbqa/{line}-{task}.csv" for line in lines for task in ("de", "dir")]
    run_workflow(tmp_path, *tables, f"{raw}/hgnc_aliases.tsv.gz")
    copy = tmp_path / raw / "perturbqa" / "hepg2-de.csv"
    copy.write_bytes(copy.read_bytes().replace(b",1,train\n", b",0,train\n", 1))
    result = run_workflow(tmp_path, "results/data/perturbqa.parquet", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{raw}/perturbqa/hepg2-de.csv: sha256" in output
    assert "Error in rule ingest_perturbqa" in output
    assert "delete it and run the workflow again" in output
