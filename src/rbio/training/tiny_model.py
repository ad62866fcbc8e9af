"""The tiny offline base model (config ``model.base: tiny``) for CPU runs.

``build_tiny_model`` writes a random Qwen2-architecture model and a byte-level BPE tokenizer trained
on the pipeline's own texts (gene symbols, prompt templates), so the whole DAG runs offline in
minutes; it loads like any hub model (``rbio.models.load_model_and_tokenizer``). Every PerturbQA
gene symbol is one token of its own: BPE would split "TP53" into "TP" "5" "3" (Qwen2's split
regex isolates digits), so what a model this small learns about a gene can sit in one embedding
instead of being composed from a spelling.

Why the tokenizer is built the way it is: transformers 5 reloads a folder whose config says
``model_type: qwen2`` with ``Qwen2Tokenizer``, which *rebuilds* its normaliser and pre-tokenizer
(NFC, Qwen2's split regex, ByteLevel without regex) and keeps only the vocabulary and merges from
``tokenizer.json``. A tokenizer trained with any other pre-tokenizer would encode differently after
reloading, so we train with exactly that pipeline (``tests/training/test_tiny_model.py`` asserts
the round trip).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rbio.data import prompts
from rbio.io import atomic_path

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Qwen2's pre-tokenizer split (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2.5-Instruct's special tokens: <|endoftext|> pads, <|im_end|> ends an assistant turn.
PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, IM_START, IM_END)
# The rbio answer-format tags, one token each in the tiny vocabulary (ordinary, not special: they
# are decoded like text). A random tiny model then emits tags often enough for the format reward
# to vary within a group, which is what gives GRPO a gradient in CPU smoke runs.
FORMAT_TAGS: tuple[str, ...] = (
    "<think>", "</think>", "<answer>", "</answer>", "<gene_info>", "</gene_info>",
)  # fmt: skip

# Qwen-style chat template (ChatML). The system prompt is used as given; without one there is none
# (the rbio prompts always carry their own system prompt).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Text the tokenizer always sees besides the caller's corpus: the tags of the rbio answer format
# and the words of its system prompt, so completions in that format tokenize compactly.
FORMAT_TEXTS: tuple[str, ...] = (
    "<think> </think> <answer> </answer> <gene_info> </gene_info>",
    "<think>\n</think>\n<answer>yes</answer>",
    "<think>\n</think>\n<answer>no</answer>",
    "A conversation between User and Biologist. The user asks a question, and the Biologist "
    "solves it. The Biologist first thinks about the reasoning process in the mind and then "
    "provides the user with the answer.",
    "Is a knockdown of GENE in K562 cells likely to result in differential expression of GENE? "
    "The answer is either yes or no.",
    "yes no Yes No",
)


def train_tokenizer(corpus_texts: Iterable[str], vocab_size: int = 2048):
    """A byte-level BPE ``tokenizers.Tokenizer`` with Qwen2's normaliser and pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte is in the vocabulary, so any text (unseen genes, unicode) encodes.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [*FORMAT_TEXTS, *corpus_texts]
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def _wrap_tokenizer(tokenizer_object, gene_symbols: Sequence[str] = ()) -> PreTrainedTokenizerBase:
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        additional_special_tokens=[IM_START],
        model_max_length=4096,
        padding_side="left",
    )
    wrapped.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in FORMAT_TAGS])
    # Whole words only, so a symbol inside a longer word or symbol ("MAX" in "MAXIMUM") stays text.
    wrapped.add_tokens(
        [AddedToken(symbol, single_word=True, normalized=False) for symbol in gene_symbols]
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(
    out_dir: str | Path,
    corpus_texts: Sequence[str],
    seed: int,
    *,
    gene_symbols: Sequence[str] = (),
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_size: int = 2048,
    max_position_embeddings: int = 2048,
) -> Path:
    """Write a random tiny Qwen2 model + locally trained tokenizer to ``out_dir`` (atomically).

    The folder is a normal Hugging Face model folder (``config.json``, ``model.safetensors``,
    ``generation_config.json``, ``tokenizer.json``, ``tokenizer_config.json`` with the chat
    template) that ``load_model_and_tokenizer`` and TRL load like any hub model. ``gene_symbols``
    become one token each.
    """
    texts = [text for text in corpus_texts if text]
    tokenizer = _wrap_tokenizer(train_tokenizer(texts, vocab_size=vocab_size), gene_symbols)
    model = random_qwen2(
        tokenizer,
        seed,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
    )
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _force_tokenizer_class(tmp / "tokenizer_config.json", "Qwen2Tokenizer")
        summary = {
            "seed": seed,
            "corpus_texts": len(texts),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
        }
        (tmp / "tiny_model.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("tiny model (%d parameters) written to %s", model.num_parameters(), out_dir)
    return out_dir


def random_qwen2(tokenizer: PreTrainedTokenizerBase, seed: int, *, hidden_size: int, **sizes: int):
    """A seeded random Qwen2 model for ``tokenizer`` (``sizes``: Qwen2Config layer counts)."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        **sizes,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, config.pad_token_id],
        pad_token_id=config.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
    )
    return model


def _force_tokenizer_class(path: Path, name: str) -> None:
    """Point ``tokenizer_config.json`` at ``name`` (what a real Qwen2 folder says)."""
    settings = json.loads(path.read_text())
    settings["tokenizer_class"] = name
    path.write_text(json.dumps(settings, indent=2) + "\n")


def gene_symbols(perturbqa_parquet: str | Path) -> list[str]:
    """Every gene symbol of the tidy PerturbQA table (perturbed and measured), sorted."""
    import pandas as pd

    table = pd.read_parquet(perturbqa_parquet, columns=["pert", "gene"])
    return sorted(set(table["pert"].astype(str)) | set(table["gene"].astype(str)))


def tokenizer_corpus(perturbqa_parquet: str | Path) -> list[str]:
    """Texts the tiny tokenizer is trained on: every PerturbQA gene symbol + the prompt texts."""
    return [*prompt_texts(), *gene_symbols(perturbqa_parquet)]


def prompt_texts() -> list[str]:
    """The prompt stage's fixed texts: system prompts and question templates (gene slots empty)."""
    texts = list(prompts.SYSTEM_PROMPTS.values())
    for line in prompts.CELL_LINES.values():
        texts += [
            template.text.format(pert="", gene="", cell_line=line)
            for template in prompts.DE_TEMPLATES
        ]
    texts.append(prompts.COEXPRESSION_TEMPLATE.format(pert="", gene=""))
    return texts
