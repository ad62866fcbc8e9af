"""Model folders: the base model a run starts from, and the one loader every model goes through.

``prepare_base_model`` materialises config ``model.base`` (the tiny offline model, a local folder
or a Hugging Face hub snapshot); ``load_model_and_tokenizer`` loads any model folder (tiny, base,
trained, released), so training and evaluation never disagree about padding or templates.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rbio.io import atomic_path
from rbio.training.tiny_model import build_tiny_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class ModelPathError(FileNotFoundError):
    """A model folder or hub id that cannot be loaded; the message names it."""


def prepare_base_model(
    base: str,
    out_dir: str | Path,
    corpus_texts: Sequence[str],
    seed: int,
    gene_symbols: Sequence[str] = (),
) -> Path:
    """Materialise config ``model.base`` in ``out_dir``: "tiny" (its tokenizer trained on
    ``corpus_texts``, one token per gene symbol), a local folder, or a hub id."""
    out_dir = Path(out_dir)
    if base == "tiny":
        return build_tiny_model(out_dir, corpus_texts, seed, gene_symbols=gene_symbols)
    local = Path(base)
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelPathError(f"model.base '{base}' is a folder without config.json")
        with atomic_path(out_dir) as tmp:
            shutil.copytree(local, tmp)
        return out_dir
    return download_hub_model(base, out_dir)


def download_hub_model(repo_id: str, out_dir: str | Path, revision: str | None = None) -> Path:
    """Download a hub model snapshot (weights as safetensors, tokenizer, configs) into ``out_dir``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    out_dir = Path(out_dir)
    try:
        with atomic_path(out_dir) as tmp:
            snapshot_download(
                repo_id=repo_id,
                revision=revision,
                local_dir=tmp,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"],
            )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise ModelPathError(
            f"could not download model '{repo_id}' from the Hugging Face hub ({error}). "
            "Offline? Set config model.base to a local model folder, or to 'tiny'."
        ) from error
    if not (out_dir / "config.json").is_file():
        raise ModelPathError(f"hub snapshot of '{repo_id}' has no config.json")
    return out_dir


def load_tokenizer(path_or_hub_id: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder/hub id, set up for batched generation (left padding)."""
    from transformers import AutoTokenizer

    source = _checked_source(path_or_hub_id)
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Decoder-only models generate after the last prompt token: pad on the left.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(
    path_or_hub_id: str | Path,
    *,
    dtype: Any = None,
    device_map: Any = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load any model folder or hub id (tiny, base, trained, published) and its tokenizer.

    The tokenizer pads on the left (batched generation); a model without a pad token gets the
    tokenizer's. ``dtype`` defaults to what the folder's config says ("auto").
    """
    from transformers import AutoModelForCausalLM

    source = _checked_source(path_or_hub_id)
    tokenizer = load_tokenizer(source)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=dtype if dtype is not None else "auto", device_map=device_map
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _checked_source(path_or_hub_id: str | Path) -> str:
    """A local folder must exist and hold config.json; anything else is treated as a hub id."""
    text = str(path_or_hub_id)
    path = Path(text)
    looks_local = (
        isinstance(path_or_hub_id, Path)
        or text.startswith((".", "/", "~"))
        or path.exists()
        or text.count("/") != 1
    )
    if looks_local:
        if not path.is_dir():
            raise ModelPathError(f"model folder {text} does not exist")
        if not (path / "config.json").is_file():
            raise ModelPathError(f"model folder {text} has no config.json (not a model folder?)")
    return text
