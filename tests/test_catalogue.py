"""The Snakemake workflow catalog's conventions: what the repository ships beside the workflow
(.snakemake-workflow-catalog.yml, config/README.md, LICENSE, CITATION.cff, the container)."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.utils import update_config

from rbio.config import ConfigError
from rbio.config_validation import validate_config
from tests.helpers import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_catalog_settings_have_the_documented_shape():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    deployment = usage["software-stack-deployment"]
    assert set(deployment) == {"conda", "apptainer", "apptainer+conda"}
    assert all(isinstance(value, bool) for value in [*deployment.values(), usage["report"]])
    # What it claims exists: a conda environment for every rule that runs a job, and a report.
    assert deployment["conda"] and list((REPO / "envs").glob("*.yaml"))
    assert 'report: "workflow/report/workflow.rst"' in (REPO / "Snakefile").read_text()


def test_config_readme_names_every_top_level_key():
    schema = yaml.safe_load(SCHEMA.read_text())
    readme = (REPO / "config" / "README.md").read_text()
    for key in schema["properties"]:
        assert f"| `{key}` |" in readme, key


def paper_config_with(*entries: str) -> dict:
    """config.yaml updated by `--config` entries as Snakemake parses them."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, parse_config(list(entries)))
    return config


def test_top_level_config_values_keep_their_type():
    """config/README.md: --config suits top-level values."""
    config = paper_config_with("seed=7", "variant_splits=[loco_k562]")
    assert config["seed"] == 7 and config["variant_splits"] == ["loco_k562"]
    validate_config(config, SCHEMA)


def test_nested_config_values_arrive_as_text_and_fail_in_one_line():
    """config/README.md: nested keys need an overlay (Snakemake reads them as strings)."""
    with pytest.raises(ConfigError, match=r"'grpo.max_steps': '60' is not of type 'integer'"):
        validate_config(paper_config_with("grpo={max_steps: 60}"), SCHEMA)


def test_license_is_mit_as_the_citation_says():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert yaml.safe_load((REPO / "CITATION.cff").read_text())["license"] == "MIT"


def test_citation_file_is_cff_1_2_0_with_the_papers_it_builds_on():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert {"message", "title", "authors"} <= set(cff)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert cff["version"] == pyproject["project"]["version"]
    references = {
        ref.get("doi") or ref["identifiers"][0]["value"]: ref for ref in cff["references"]
    }
    assert set(references) == {"10.1101/2025.08.18.670981", "arXiv:2502.21290"}  # rbio1, PerturbQA
    for ref in cff["references"]:
        assert {"type", "title", "authors", "year"} <= set(ref)
    # The paper configuration names the same paper.
    assert "10.1101/2025.08.18.670981" in (REPO / "config.yaml").read_text()


def container_definition() -> tuple[str, str]:
    """The Snakefile's container path (relative to the checkout) and its definition file."""
    snakefile = (REPO / "Snakefile").read_text()
    found = re.search(r'^container: "(.+\.sif)"$', snakefile, re.MULTILINE)
    assert found, "the Snakefile declares no container from the repository"
    image = found.group(1)
    definition = REPO / image.removesuffix(".sif")
    return image, definition.with_suffix(".def").read_text()


def test_container_is_built_from_the_lock_by_its_definition():
    image, definition = container_definition()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    # A built image is not committed.
    ignored = subprocess.run(["git", "check-ignore", "-q", image], cwd=REPO)
    assert ignored.returncode == 0, f"{image} is not git-ignored"
    assert "From: python:3.11-" in definition
    assert pyproject["project"]["requires-python"] == ">=3.11,<3.12"
    # Every file the image copies exists; the lock is one of them, installed as locked.
    section = definition.split("%files", 1)[1].split("\n%", 1)[0]
    sources = [line.split()[0] for line in section.strip().splitlines()]
    assert "uv.lock" in sources and "pyproject.toml" in sources
    for source in sources:
        assert (REPO / source).is_file(), source
    assert "uv sync --frozen" in definition
    assert f"uv=={pyproject['tool']['uv']['required-version'].removeprefix('==')}" in definition
