"""The prompt source declarations are complete and consistent with what reads them."""

from __future__ import annotations

import yaml

from rbio.data import prompts
from rbio.data.prompts import SYSTEM_PROMPTS
from rbio.rewards.registry import REWARD_NAMES
from rbio.sources import ASPECTS_FROM_CONFIG, GO_COMPOSITIONS, GO_SOURCES, SOURCES
from tests.helpers import REPO


def test_every_declaration_names_what_exists() -> None:
    for name, source in SOURCES.items():
        assert source.name == name
        assert source.system_prompt in SYSTEM_PROMPTS, name
        assert callable(getattr(prompts, source.builder, None)), name
        for composition in GO_COMPOSITIONS:
            rewards = source.rewards(composition)
            assert rewards and set(rewards) <= set(REWARD_NAMES), (name, composition)
        aspects = source.go_aspects
        assert aspects in (None, ASPECTS_FROM_CONFIG) or set(aspects) <= {"C", "F", "P"}, name
        for path in source.verifier_outputs.values():
            assert path.startswith("results/verifiers/") and path.endswith(".parquet"), name


def test_gene_info_sources_are_the_go_sources() -> None:
    assert sorted(GO_SOURCES) == ["go", "go_c", "go_f", "go_p"]
    assert all(SOURCES[name].uses_go_settings for name in GO_SOURCES)


def test_the_schema_lists_every_source() -> None:
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    variant = schema["properties"]["variants"]["additionalProperties"]
    description = variant["properties"]["sources"]["description"]
    assert description.endswith(f"({', '.join(SOURCES)}).")
