"""GRPO precision, batch and model saving: what a GPU run gets wrong silently, caught on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

from rbio.training import grpo
from rbio.training.grpo import train_grpo
from tests.helpers import REPO
from tests.training.conftest import grpo_job, stand_in_rewards, tiny_config

PAPER_GRPO = yaml.safe_load((REPO / "config.yaml").read_text())["grpo"]


class WeightChange(TrainerCallback):
    """Share of the trained weights' elements that differ after training, per tensor and overall
    (compared in the dtype the trainer keeps them in, as the optimizer leaves them)."""

    def __init__(self) -> None:
        self.before: dict = {}
        self.changed: dict[str, float] = {}
        self.total = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    def on_train_end(self, args, state, control, model=None, **kwargs):
        params = dict(model.named_parameters())
        changed = elements = 0
        for name, old in self.before.items():
            differ = int((params[name].detach() != old).sum())
            self.changed[name] = differ / old.numel()
            changed, elements = changed + differ, elements + old.numel()
        self.total = changed / elements


def test_paper_precision_updates_nearly_every_weight(
    tmp_path, tiny_model_dir, exp_prompts, monkeypatch
):
    # The paper's precision (bf16) and learning rate / warm-up on one device without DeepSpeed:
    # weights loaded in bf16 lost every AdamW update of ~lr (5e-6 at most, 5e-8 in the first
    # warm-up step) to rounding, so a 1-GPU run barely trained. bf16 autocast runs on CPU; only
    # the machine check (bf16 is pointless on a CPU in a real run) stands in the way.
    monkeypatch.setattr(grpo, "check_machine", lambda *args, **kwargs: None)
    cfg = tiny_config(
        bf16=True,
        learning_rate=PAPER_GRPO["learning_rate"],
        warmup_steps=PAPER_GRPO["warmup_steps"],
        max_steps=2,
        save_steps=1000,
        logging_steps=1,
    )
    assert cfg.grpo["bf16"] and cfg.grpo["learning_rate"] == 5e-6
    change = WeightChange()
    job = grpo_job(cfg, tiny_model_dir, exp_prompts, tmp_path)
    train_grpo(job, reward_factory=stand_in_rewards, callbacks=[change])
    # Embedding rows of tokens no prompt or completion used get no gradient, and a norm's
    # weights (~1.0) move by less than fp32's half-ulp at 1.0 (6e-8) in the first warm-up steps.
    assert change.total > 0.9, change.changed
    linear = {k: v for k, v in change.changed.items() if "proj" in k}
    assert min(linear.values()) > 0.9, linear
    # The model is written in the training precision, not as the fp32 master weights.
    saved = load_file(Path(job.out_dir) / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.bfloat16}


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_global_batch_is_rbio1s_on_any_gpu_count(tmp_path, gpus):
    from rbio.training.grpo import grpo_arguments

    cfg = tiny_config(**{k: PAPER_GRPO[k] for k in ("global_prompts_per_step", "bf16")})
    job = grpo_job(cfg, tmp_path, tmp_path, tmp_path, processes=gpus)
    args = grpo_arguments(job, [1.0, 1.0, 2.0], cuda=False)
    completions = args.per_device_train_batch_size * gpus * args.gradient_accumulation_steps
    assert completions == 8 * 4  # rbio1: 8 H100s x 4 completions (1 prompt x 4 generations)
    assert args.steps_per_generation == args.gradient_accumulation_steps  # one generation a step


def test_a_gpu_count_that_cannot_hold_the_global_batch_is_refused():
    from rbio.config import ConfigError

    grpo = tiny_config(global_prompts_per_step=8).grpo
    with pytest.raises(ConfigError, match=r"32 completions .* over 3 GPU\(s\)"):
        grpo.gradient_accumulation_steps(processes=3)


@pytest.mark.parametrize(("bf16", "precision"), [(True, "bf16"), (False, "no")])
def test_launch_takes_mixed_precision_from_the_config(tmp_path, bf16, precision):
    # zero3.yaml fixed bf16: a multi-GPU run with grpo.bf16 false crashed at start. The command
    # is read by accelerate's own parser, with the shipped config file as its defaults.
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from rbio.training.grpo import launch_command

    cfg = tiny_config(bf16=bf16, global_prompts_per_step=2)
    job = grpo_job(cfg, tmp_path, tmp_path, tmp_path, processes=2)
    command = launch_command(job, REPO / cfg.grpo.deepspeed_config, tmp_path / "job.json")
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(command[3:])
    args, _, _ = _validate_launch_command(args)
    assert (args.mixed_precision, args.num_processes, args.use_deepspeed) == (precision, 2, True)
    assert args.training_script_args == [str(tmp_path / "job.json")]


def test_training_arguments_exist_before_the_model_is_loaded(
    tmp_path, tiny_model_dir, exp_prompts, monkeypatch
):
    # Under ZeRO-3 the arguments register DeepSpeed's config, which from_pretrained reads to
    # load each rank's shard only: a model loaded before them sat whole in every rank's memory.
    from rbio.training.grpo import prepare_training

    events = []

    def recorded(name, func):
        def wrapper(*args, **kwargs):
            result = func(*args, **kwargs)
            events.append((name, result))
            return result

        return wrapper

    monkeypatch.setattr(grpo, "grpo_arguments", recorded("args", grpo.grpo_arguments))
    monkeypatch.setattr(
        grpo, "load_model_and_tokenizer", recorded("model", grpo.load_model_and_tokenizer)
    )
    job = grpo_job(tiny_config(), tiny_model_dir, exp_prompts, tmp_path)
    inputs = prepare_training(job, stand_in_rewards)
    assert [name for name, _ in events] == ["args", "model"]
    assert inputs.args is events[0][1], "the arguments the model was loaded under train it"
    assert inputs.args.reward_weights == [1.0, 1.0, 2.0]  # config.yaml's EXP weights
    assert next(inputs.model.parameters()).dtype == torch.float32


def test_rewards_built_with_other_weights_than_the_config_are_refused():
    # The arguments take the config's weights before the rewards are built: the two must agree.
    from rbio.training.grpo import RewardConfigError, resolve_rewards

    variant = tiny_config().variants["EXP"]  # format 1, mention 1, answer 2
    funcs, _ = stand_in_rewards(variant)
    assert resolve_rewards(variant, funcs, [1, 1, 2])[1] == [1.0, 1.0, 2.0]
    with pytest.raises(RewardConfigError, match="names, order and weights must match"):
        resolve_rewards(variant, funcs, [1.0, 1.0, 1.0])
    with pytest.raises(RewardConfigError, match="names, order and weights must match"):
        resolve_rewards(variant, funcs[::-1], [2.0, 1.0, 1.0])


def test_lora_job_writes_the_merged_model_and_keeps_its_adapter(
    tmp_path, tiny_model_dir, exp_prompts
):
    from rbio.training.model_files import ADAPTER_DIR, weight_shapes

    cfg = tiny_config(lora={"r": 4, "alpha": 8}, max_steps=2, learning_rate=1e-2)
    job = grpo_job(cfg, tiny_model_dir, exp_prompts, tmp_path)
    train_grpo(job, reward_factory=stand_in_rewards)
    out = Path(job.out_dir)
    # A plain model (no adapter config beside the weights) with the base model's tensors.
    assert not (out / "adapter_config.json").exists()
    assert weight_shapes(out) == weight_shapes(tiny_model_dir)
    assert (out / ADAPTER_DIR / "adapter_config.json").is_file()
    assert not (out / ADAPTER_DIR / "training_args.bin").exists()
    before, after = (
        load_file(tiny_model_dir / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("proj" in k for k in changed), changed  # LoRA's targets only


def test_weights_unlike_the_base_models_are_refused_by_name(tmp_path, tiny_model_dir):
    # What merge_and_unload on ZeRO-3 partitioned parameters wrote: empty embeddings.
    from safetensors.torch import save_file

    from rbio.training.model_files import ModelWeightsError, check_adapter, check_weights_match

    weights = load_file(tiny_model_dir / "model.safetensors")
    check_weights_match(tiny_model_dir, tiny_model_dir)
    cases = {
        "shape": (
            {"model.embed_tokens.weight": torch.empty(0)},
            r"'model.embed_tokens.weight' has shape \[0\]",
        ),
        "extra": (
            {"model.layers.0.mlp.up_proj.lora_A.weight": torch.ones(2, 2)},
            "e.g. 'model.layers.0.mlp.up_proj.lora_A",
        ),
    }
    for name, (change, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        save_file({**weights, **change}, str(folder / "model.safetensors"))
        with pytest.raises(ModelWeightsError, match=message):
            check_weights_match(tiny_model_dir, folder)
    missing = tmp_path / "missing"
    missing.mkdir()
    save_file(
        {k: v for k, v in weights.items() if "norm" not in k}, str(missing / "model.safetensors")
    )
    with pytest.raises(ModelWeightsError, match="lacks tensor 'model.*norm"):
        check_weights_match(tiny_model_dir, missing)
    with pytest.raises(ModelWeightsError, match="'lora_B' has shape"):
        save_file({"lora_B": torch.empty(8, 0)}, str(missing / "adapter_model.safetensors"))
        check_adapter(missing)
