"""The paper configuration plans the expected DAG (a dry run; no data needed)."""

import re
import subprocess
import sys

from tests.helpers import REPO


def job_counts(tmp_path, target: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(REPO / "config.yaml"), "-n", target, "--quiet", "rules"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    table = result.stdout.split("Job stats:")[-1]
    return {
        name: int(count)
        for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
    }


def test_all_variants_plans_every_variant_and_split(tmp_path):
    counts = job_counts(tmp_path, "all_variants")
    assert counts["train_grpo"] == 11 * 4  # 11 released variants x 4 leave-one-cell-line-out splits
    assert "train_sft" not in counts  # sft.enabled is false: GRPO starts from the base model
    assert (
        counts["evaluate_model"] == (11 * 4 + 4) * 2
    )  # + the base model per split, x (nocot, cot)
    assert counts["build_prompts"] == 6 * 4  # sources exp, mlp, tf, go, go_c, go_f per split
    assert counts["train_mlp_verifier"] == 4
    assert counts["evaluate_baselines"] == 4
    assert counts["precompute_tf_pmi"] == 1


def test_data_target_builds_every_split(tmp_path):
    counts = job_counts(tmp_path, "data")
    assert counts["make_split"] == 9  # loco x 4, single x 4, all
    assert counts["acquire_perturbqa"] == 8
