"""The tiny offline base model and the one model loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbio.models import ModelPathError, load_model_and_tokenizer
from rbio.training.tiny_model import FORMAT_TAGS, IM_END, IM_START, PAD_TOKEN, build_tiny_model

GENES = ["TP53", "MYC", "GATA1", "HBG2", "RPL3", "C1orf112", "HLA-DRB1", "MT-ND1", "ZNF217"]
TEXTS = [
    *GENES,
    "Is a knockdown of TP53 in K562 cells likely to result in differential expression of MYC? "
    "The answer is either yes or no.",
]
# Unicode, digits, CRLF, runs of spaces, gene names never seen in training, special tokens.
PROBES = [
    "Is a knockdown of UNSEENGENE1 in HepG2 cells likely? <think>café naïve Å</think>",
    "line one\r\nline two\n\n   indented\t tab 12345 don't",
    f"{IM_START}user\nhi{IM_END}{PAD_TOKEN}",
    "<answer>yes</answer>",
    "<gene_info>TP53: nucleus</gene_info><think>a<b </think >x</think>",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(
        tmp_path_factory.mktemp("models") / "base", TEXTS, seed=0, gene_symbols=GENES
    )


def test_folder_is_a_complete_safetensors_model(tiny_dir: Path):
    names = {path.name for path in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    assert not list(tiny_dir.parent.glob(".tmp-*")), "atomic write left a temporary folder"


def test_reloaded_tokenizer_encodes_like_the_trained_one(tiny_dir: Path):
    from tokenizers import Tokenizer
    from transformers import Qwen2Tokenizer

    trained = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    _, auto = load_model_and_tokenizer(tiny_dir)
    explicit = Qwen2Tokenizer.from_pretrained(tiny_dir)
    assert type(auto).__name__ == "Qwen2Tokenizer"
    for text in PROBES:
        expected = trained.encode(text).ids
        assert auto(text)["input_ids"] == expected
        assert explicit(text)["input_ids"] == expected
        assert auto.decode(expected) == text


def test_gene_symbols_are_whole_word_tokens_after_reloading(tiny_dir: Path):
    _, tokenizer = load_model_and_tokenizer(tiny_dir)
    for gene in GENES:
        ids = tokenizer(f"knockdown of {gene}? yes", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_tokens_to_ids(gene) in ids, gene
    # Inside a longer word a symbol is ordinary text: "MYC" in "MYCN" and "TP53" in "TP53BP1".
    for word, symbol in (("MYCN", "MYC"), ("TP53BP1", "TP53")):
        ids = tokenizer(f"of {word} in", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_tokens_to_ids(symbol) not in ids, word
        assert tokenizer.decode(ids) == f"of {word} in"


def test_special_tokens_chat_template_and_left_padding(tiny_dir: Path):
    model, tokenizer = load_model_and_tokenizer(tiny_dir)
    assert tokenizer.padding_side == "left"
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token == PAD_TOKEN
    for token in (IM_START, IM_END, PAD_TOKEN, *FORMAT_TAGS):
        assert len(tokenizer(token)["input_ids"]) == 1
    assert tokenizer.decode(tokenizer("<think>x</think>")["input_ids"]) == "<think>x</think>"
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == f"{IM_START}system\nS{IM_END}\n{IM_START}user\nQ{IM_END}\n{IM_START}assistant\n"
    assert model.config.model_type == "qwen2"
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_generation_runs_batched(tiny_dir: Path):
    import torch

    model, tokenizer = load_model_and_tokenizer(tiny_dir)
    batch = tokenizer(
        ["short", "a much longer prompt about GATA1"], return_tensors="pt", padding=True
    )
    assert (batch["attention_mask"][0, 0] == 0).item(), "padding must be on the left"
    torch.manual_seed(0)
    out = model.generate(**batch, max_new_tokens=5, do_sample=True)
    assert out.shape[0] == 2
    assert batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 5


def test_same_seed_same_weights(tmp_path: Path, tiny_dir: Path):
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again", TEXTS, seed=0, gene_symbols=GENES)
    first, second = (
        load_file(tiny_dir / "model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all((first[key] == second[key]).all() for key in first)


@pytest.mark.parametrize("bad", ["does/not/exist/here", "./missing-model"])
def test_missing_model_folder_is_named(bad: str):
    with pytest.raises(ModelPathError, match="missing-model|does/not/exist"):
        load_model_and_tokenizer(bad)


def test_folder_without_config_is_named(tmp_path: Path):
    with pytest.raises(ModelPathError, match="no config.json"):
        load_model_and_tokenizer(tmp_path)
