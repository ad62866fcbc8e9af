import copy

import pytest
import yaml

from rbio.config import ConfigError
from rbio.config_file import load_config, read_config
from rbio.sources import GO_COMPOSITIONS, SOURCES, go_composition_of
from tests.helpers import REPO, TINY

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
PAPER_VARIANTS = [
    "EXP",
    "MLP",
    "TF",
    "GO",
    "GO-C",
    "GO-F",
    "GO+EXP",
    "TF+EXP",
    "TF+GO+EXP",
    "TF+GO+MLP",
    "TF+GO+MLP+EXP",
]


@pytest.fixture(scope="module")
def paper_raw():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_paper_config_declares_the_released_variants():
    config = read_config(REPO / "config.yaml")
    assert list(config.variants) == PAPER_VARIANTS
    assert config.model_base == "Qwen/Qwen2.5-3B-Instruct"
    grpo = config.grpo
    assert (
        grpo["num_generations"],
        grpo["per_device_train_batch_size"],
        grpo["learning_rate"],
        grpo["max_steps"],
        grpo["save_steps"],
    ) == (4, 4, 5e-6, 100_000, 10_000)
    assert config.split_names == [f"loco_{x}" for x in ("k562", "rpe1", "hepg2", "jurkat")] + [
        f"single_{x}" for x in ("k562", "rpe1", "hepg2", "jurkat")
    ] + ["all"]
    assert len(config.variant_splits()) == 11 * 4
    assert config.variants["TF+GO+MLP"].sources == {"tf": 1.0, "go": 1.0, "mlp": 1.0}
    assert config.variants["EXP"].rewards == {"format": 1.0, "mention": 1.0, "answer": 2.0}


def test_tiny_preset_overlays_the_paper_config():
    config = read_config(REPO / "config.yaml", TINY)
    assert config.model_base == "tiny"
    assert list(config.variants) == PAPER_VARIANTS
    assert config.split_names == ["loco_k562", "single_rpe1"]
    assert config.grpo != read_config(REPO / "config.yaml").grpo


def _repeated(overlay, base, path=""):
    """Keys of ``overlay`` whose value equals ``base``'s (an overlay should not repeat them)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            yield from _repeated(value, base[key], f"{path}{key}.")
        elif key in base and base[key] == value:
            yield f"{path}{key}"


def test_tiny_preset_holds_only_what_differs_from_the_paper_config():
    paper, tiny = (yaml.safe_load(path.read_text()) for path in (REPO / "config.yaml", TINY))
    assert list(_repeated(tiny, paper)) == []


def test_gene_panel_overlay_loads_on_the_tiny_preset_and_repeats_nothing():
    panel = REPO / "config" / "tiny_panel.yaml"
    config = read_config(REPO / "config.yaml", TINY, panel)
    assert config.splits.gene_panel == 72 and config.splits.max_test_rows is None
    assert config.sft.enabled and config.evaluation.prompt_styles == ("nocot",)
    assert read_config(REPO / "config.yaml", TINY).splits.gene_panel is None
    merged_tiny = yaml.safe_load(TINY.read_text())
    assert list(_repeated(yaml.safe_load(panel.read_text()), merged_tiny)) == []


def test_typed_sections_round_trip_through_rule_params():
    from rbio.config import Config, as_params, from_params

    config = read_config(REPO / "config.yaml", TINY)
    params = as_params(config)
    assert repr(params) == repr(as_params(from_params(Config, params)))
    assert from_params(Config, params) == config
    # Snakemake compares params by repr of built-in values only: no dataclass may remain.
    assert "Config(" not in repr(params) and "(" not in repr(params["grpo"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["data"].update(cell_lines=["k562", "hela"]),
            "config key 'data.cell_lines': unknown value(s) ['hela']; valid values: ['hepg2', 'jurkat', 'k562', 'rpe1']",
        ),
        (
            lambda c: c["splits"].update(loco=["rpe2"]),
            "config key 'splits.loco': unknown value(s) ['rpe2']",
        ),
        (
            lambda c: c.update(variant_splits=["loco_k562", "loco_hela"]),
            "config key 'variant_splits': unknown value(s) ['loco_hela']",
        ),
        (
            lambda c: c["variants"]["EXP"].update(sources={"exp": 1.0, "gear": 1.0}),
            f"config key 'variants.EXP.sources': unknown value(s) ['gear']; valid values: {sorted(SOURCES)}",
        ),
        (
            lambda c: c["variants"]["EXP"].update(rewards={"answr": 1.0}),
            "config key 'variants.EXP.rewards': unknown value(s) ['answr']",
        ),
        (
            lambda c: c["variants"]["EXP"].update(splits=["loco_all"]),
            "config key 'variants.EXP.splits': unknown value(s) ['loco_all']",
        ),
        (
            lambda c: c["verifiers"]["mlp"].update(confidence="minmax"),
            "config key 'verifiers.mlp.confidence': unknown value(s) ['minmax']; "
            "valid values: ['raw', 'threshold_centred']",
        ),
        (
            lambda c: c["verifiers"]["go"].update(composition="median"),
            "config key 'verifiers.go.composition': unknown value(s) ['median']; "
            f"valid values: {sorted(GO_COMPOSITIONS)}",
        ),
        (
            lambda c: c["grpo"].update(per_device_train_batch_size=6),
            "not divisible by grpo.num_generations=4",
        ),
        (
            lambda c: c["grpo"].update(per_device_train_batch_size=8, global_prompts_per_step=1),
            "config key 'grpo.global_prompts_per_step': 4 completions per optimizer step",
        ),
    ],
)
def test_unknown_names_fail_with_key_and_valid_values(paper_raw, mutate, message):
    raw = copy.deepcopy(paper_raw)
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        load_config(raw)
    assert message in str(error.value)


def test_schema_errors_name_the_key(tmp_path, paper_raw):
    raw = copy.deepcopy(paper_raw)
    raw["grpo"]["learning_rate"] = "fast"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="config key 'grpo.learning_rate'"):
        read_config(path, schema=REPO / "workflow/schemas/config.schema.yaml")


def test_mlp_confidence_defaults_to_the_authors_and_names_its_mappings_once(tmp_path, paper_raw):
    from rbio.verifiers.confidence import PROBABILITY_CONFIDENCES

    assert read_config(REPO / "config.yaml").verifiers.mlp.confidence == "raw"  # rbio1's "1-p|p"
    assert read_config(REPO / "config.yaml", TINY).verifiers.mlp.confidence == "raw"
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    mlp = schema["properties"]["verifiers"]["properties"]["mlp"]["properties"]
    assert tuple(mlp["confidence"]["enum"]) == PROBABILITY_CONFIDENCES
    for mapping in PROBABILITY_CONFIDENCES:
        raw = copy.deepcopy(paper_raw)
        raw["verifiers"]["mlp"]["confidence"] = mapping
        path = tmp_path / f"{mapping}.yaml"
        path.write_text(yaml.safe_dump(raw))
        assert read_config(path, schema=SCHEMA).verifiers.mlp.confidence == mapping
    raw["verifiers"]["mlp"]["confidence"] = "minmax"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError, match="config key 'verifiers.mlp.confidence': 'minmax' is not one of"
    ):
        read_config(path, schema=SCHEMA)


def test_every_schema_key_has_a_description():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub, f"schema key {path + key} has no description"
            walk(sub, f"{path}{key}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}*.")

    walk(schema, "")


@pytest.mark.parametrize("composition", sorted(GO_COMPOSITIONS))
def test_go_composition_sets_the_go_variants_default_rewards(paper_raw, composition):
    raw = copy.deepcopy(paper_raw)
    raw["verifiers"]["go"]["composition"] = composition
    raw["variants"]["GO-LABEL"] = {"sources": {"go": 1.0}, "rewards": {"format": 1.0}}
    variants = load_config(raw).variants
    for name in ("GO", "GO-C", "GO-F"):
        assert variants[name].rewards == GO_COMPOSITIONS[composition], name
    assert go_composition_of(variants["TF+GO+MLP+EXP"].rewards) == composition
    assert variants["EXP"].rewards == {"format": 1.0, "mention": 1.0, "answer": 2.0}
    assert variants["GO-LABEL"].rewards == {"format": 1.0}  # a variant's own rewards win


def test_paper_config_composes_go_as_the_authors_later_code(paper_raw):
    assert paper_raw["verifiers"]["go"]["composition"] == "answer_ema"


def overlay_error(tmp_path, overlay_text: str) -> str:
    """The ConfigError message of the paper config with one overlay file on top."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(overlay_text)
    with pytest.raises(ConfigError) as error:
        read_config(REPO / "config.yaml", overlay, schema=SCHEMA)
    return str(error.value)


@pytest.mark.parametrize(
    ("overlay_text", "message"),
    [
        ("seeed: 1\n", "config key 'seeed': unknown key; did you mean 'seed'?"),
        (
            "grpo:\n  learning_rat: 1.0e-6\n",
            "config key 'grpo.learning_rat': unknown key; did you mean 'grpo.learning_rate'?",
        ),
        ("zzz: 1\n", "config key 'zzz': unknown key; valid keys here: data, evaluation"),
    ],
)
def test_unknown_keys_fail_in_one_line_with_the_closest_valid_key(tmp_path, overlay_text, message):
    text = overlay_error(tmp_path, overlay_text)
    assert message in text
    assert len(text.splitlines()) == 1 and len(text) < 300


@pytest.mark.parametrize(
    ("overlay_text", "message"),
    [
        ("grpo:\n  learning_rate: .nan\n", "config key 'grpo.learning_rate': nan is not a finite"),
        ("grpo:\n  temperature: .inf\n", "config key 'grpo.temperature': inf is not a finite"),
        ("evaluation:\n  temperature: -.inf\n", "'evaluation.temperature': -inf is not a finite"),
        ("prompts:\n  negated_fraction: .nan\n", "'prompts.negated_fraction': nan is not a finite"),
        (
            "variants:\n  EXP:\n    sources: {exp: .nan}\n",
            "config key 'variants.EXP.sources.exp': nan is not a finite number",
        ),
        (
            "variants:\n  EXP:\n    sources: {exp: 1.0}\n    rewards: {format: .inf}\n",
            "config key 'variants.EXP.rewards.format': inf is not a finite number",
        ),
        (
            "variants:\n  EXP:\n    sources: {exp: 1.0}\n    rewards: {format: -1.0}\n",
            "config key 'variants.EXP.rewards.format': -1.0 is less than the minimum of 0",
        ),
        (
            "variants:\n  EXP:\n    sources: {exp: -1.0}\n",
            "config key 'variants.EXP.sources.exp': -1.0 is less than or equal to the minimum of 0",
        ),
    ],
)
def test_non_finite_and_negative_weights_fail_with_the_key(tmp_path, overlay_text, message):
    assert message in overlay_error(tmp_path, overlay_text)


def test_evaluation_without_greedy_or_samples_fails_at_load(tmp_path):
    message = overlay_error(tmp_path, "evaluation:\n  greedy: false\n  num_samples: 0\n")
    assert message.startswith("config key 'evaluation': greedy is false and num_samples is 0")
    assert len(message.splitlines()) == 1


def test_a_vllm_window_shorter_than_prompt_plus_completion_fails_at_load(tmp_path):
    message = overlay_error(tmp_path, "grpo:\n  vllm_max_model_length: 700\n")
    assert message.startswith("config key 'grpo.vllm_max_model_length': 700 tokens")
    assert "(768)" in message


def test_the_paper_config_generates_with_vllm_and_the_tiny_preset_without():
    paper, tiny = read_config(REPO / "config.yaml"), read_config(REPO / "config.yaml", TINY)
    assert paper.grpo["use_vllm"] and paper.evaluation.engine == "vllm"
    assert not tiny.grpo["use_vllm"] and tiny.evaluation.engine == "hf"


def test_sft_variants_choose_which_grpo_runs_cold_start(tmp_path, paper_raw):
    raw = copy.deepcopy(paper_raw)
    raw["sft"] |= {"enabled": True, "variants": ["EXP", "TF+EXP"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    sft = read_config(path, schema=SCHEMA).sft
    assert [sft.cold_starts(v) for v in ("EXP", "TF+EXP", "GO")] == [True, True, False]
    assert "variants" not in sft.trainer_arguments()  # the pipeline's key, not TRL's
    raw["sft"]["variants"] = None
    path.write_text(yaml.safe_dump(raw))
    assert read_config(path, schema=SCHEMA).sft.cold_starts("GO")
    raw["sft"] |= {"enabled": False, "variants": ["EXP"]}
    path.write_text(yaml.safe_dump(raw))
    assert not read_config(path, schema=SCHEMA).sft.cold_starts("EXP")
    raw["sft"]["variants"] = ["EXP", "EPX"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError, match=r"config key 'sft.variants': unknown value\(s\) \['EPX'\]"
    ):
        read_config(path, schema=SCHEMA)
