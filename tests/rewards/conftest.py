"""Shared fixtures: a tiny offline tokenizer and a tiny random Qwen2 model for go_likelihood."""

from __future__ import annotations

from typing import Any

import pytest

_CORPUS = [
    "TP53 is associated with: DNA binding, apoptotic process, nucleus.",
    "<gene_info>MDM2 is an E3 ubiquitin ligase that binds TP53.</gene_info>",
    "<think>Knocking down BRCA1 impairs DNA repair.</think><answer>yes</answer>",
    "Is a knockdown of GATA1 in K562 cells likely to result in differential expression of HBG1?",
    "cytosol, mitochondrion, protein binding, transcription factor activity, kinase activity",
]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|pad|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<|pad|>", eos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer: Any) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(config).eval()
