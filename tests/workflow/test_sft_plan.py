"""The optional SFT stage in the DAG when enabled (disabled, the paper configuration plans no
SFT job: tests/workflow/test_plan.py)."""

import re
import subprocess
import sys

import yaml

from tests.helpers import REPO


def plan(tmp_path, *targets: str, sft_enabled: bool, variants=None) -> tuple[dict[str, int], str]:
    """(jobs per rule, the dry run's job listing) of the paper configuration."""
    overlay = tmp_path / "sft.yaml"
    overlay.write_text(yaml.safe_dump({"sft": {"enabled": sft_enabled, "variants": variants}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml"), str(overlay),
         "-n", "-p", *targets],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    table = result.stdout.split("Job stats:")[-1]
    counts = {
        name: int(count)
        for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
    }
    return counts, result.stdout


MODEL = "results/models/MLP/loco_k562/config.json"


def rule_inputs(listing: str, rule: str) -> str:
    return re.search(r"input: (.*)", listing[listing.index(f"rule {rule}:") :])[1]


def test_sft_enabled_plans_sft_before_grpo_which_starts_from_it(tmp_path):
    counts, listing = plan(tmp_path, MODEL, sft_enabled=True)
    assert counts["train_sft"] == counts["train_grpo"] == 1
    grpo = rule_inputs(listing, "train_grpo")
    assert "results/sft/MLP/loco_k562/config.json" in grpo
    assert "results/models/base/config.json" not in grpo
    assert "results/models/base/config.json" in rule_inputs(listing, "train_sft")
    assert "results/prompts/mlp/loco_k562" in rule_inputs(listing, "train_sft")


def test_sft_variants_cold_start_only_the_variants_named(tmp_path):
    """sft.variants [MLP]: MLP's GRPO starts from its SFT model, EXP's from the base model."""
    exp = "results/models/EXP/loco_k562/config.json"
    counts, listing = plan(tmp_path, MODEL, exp, sft_enabled=True, variants=["MLP"])
    assert counts["train_sft"] == 1 and counts["train_grpo"] == 2
    grpo_inputs = re.findall(r"rule train_grpo:\n\s+input: (.*)", listing)
    starts = sorted("results/sft/MLP" in line for line in grpo_inputs)
    assert starts == [False, True]
    for line in grpo_inputs:
        assert "results/splits/loco_k562/validation.parquet" in line
