"""The weights of a trained model folder: LoRA adapters merged in one process, and every tensor
checked against the base model before the folder counts as written.

Under DeepSpeed ZeRO-3 each rank holds a shard of every parameter. ``merge_and_unload()`` on the
partitioned model merges and saves empty tensors (embeddings and output weights of shape [0]),
which loads only as far as evaluation. So a LoRA job saves its adapter through the trainer (which
gathers the shards), and one process merges it into a freshly loaded base model afterwards. A
weight whose shape is not the base model's stops the job before the model folder is moved into
place, naming the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"  # inside the model folder: the LoRA adapter the merged weights came from


class ModelWeightsError(RuntimeError):
    """The weights written for a trained model do not fit the base model."""


def weight_shapes(folder: str | Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of the ``*.safetensors`` files in ``folder`` (headers only)."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ModelWeightsError(f"{folder} holds no *.safetensors weights")
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def check_weights_match(base_dir: str | Path, model_dir: str | Path) -> None:
    """Raise ``ModelWeightsError`` unless ``model_dir`` holds the base model's tensors, each with
    the base model's shape, and nothing else (a stray adapter tensor means a merge went wrong)."""
    base, written = weight_shapes(base_dir), weight_shapes(model_dir)
    for name, shape in base.items():
        if name not in written:
            raise ModelWeightsError(
                f"trained model {model_dir} lacks tensor '{name}' of the base model {base_dir}"
            )
        if written[name] != shape:
            raise ModelWeightsError(
                f"trained model {model_dir} is corrupt: tensor '{name}' has shape "
                f"{list(written[name])}, the base model's ({base_dir}) is {list(shape)}"
            )
    extra = sorted(set(written) - set(base))
    if extra:
        raise ModelWeightsError(
            f"trained model {model_dir} holds {len(extra)} tensor(s) the base model {base_dir} "
            f"does not, e.g. '{extra[0]}'"
        )


def check_adapter(adapter_dir: str | Path) -> None:
    """An adapter saved from partitioned parameters holds empty tensors: refuse it by name."""
    for name, shape in weight_shapes(adapter_dir).items():
        if 0 in shape:
            raise ModelWeightsError(
                f"LoRA adapter {adapter_dir} is corrupt: tensor '{name}' has shape {list(shape)}"
            )


def merge_lora(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: Any):
    """Load the base model in fp32 (in this process only, no device or sharding), merge the
    adapter into it and save the plain model in ``dtype`` as safetensors in ``out_dir``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    check_adapter(adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.to(dtype).save_pretrained(str(out_dir), safe_serialization=True)
