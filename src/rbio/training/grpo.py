"""GRPO training of one model variant on one split (TRL ``GRPOTrainer``), tracked in MLflow.

One job = one (variant, split, seed). It

1. checks the machine (bf16 / vLLM need CUDA) and its inputs (model folder, prompt datasets,
   rewards), failing with a message that names what is wrong;
2. builds the variant's training set, the weighted mixture of its sources' prompts
   (``rbio.training.mixture``), and drops prompts longer than ``grpo.max_prompt_length`` tokens
   (TRL 1.x no longer truncates prompts; the number dropped is in the summary);
3. takes the variant's reward functions and weights from ``rbio.rewards.registry`` and wraps each
   so that an exception on one completion cannot kill the run (``rbio.training.safe_rewards``);
4. trains with config ``grpo``'s TRL arguments (passed to ``trl.GRPOConfig`` as given) and
   checkpoints in ``checkpoint_dir`` (outside the rule's outputs), resuming from the newest
   complete one when rerun (``rbio.training.checkpoints``); SIGTERM / SIGUSR1 or the SLURM time
   limit drawing near save the current step and end the job with a non-zero code
   (``rbio.training.interrupt``); the checkpoints are deleted once the model is written;
5. logs to one MLflow run per (variant, split, seed), tagged by ``rbio.tracking.run_tags``
   (variant, split, seed, stage=train and the provenance tags of the model it writes) and
   ``go_composition`` for a variant composing GO rewards as config verifiers.go.composition; TRL's
   per-step metrics (``rewards/<name>/mean|std``, ``frac_reward_zero_std``,
   ``completions/mean_length``, loss, grad_norm) and ``reward_failures/<name>``. A resumed job
   continues the same MLflow run (its id is kept beside the checkpoints);
6. writes the model folder atomically: weights (safetensors in the training precision; a LoRA
   adapter merged into the base model by one process, the adapter kept in ``adapter/``; every
   tensor's shape checked against the base model, ``rbio.training.model_files``), tokenizer,
   generation config, ``trainer_state.json``, ``training_summary.json`` and ``run.json`` (the
   MLflow run id) -- ``config.json`` last-in-place via one rename, so a half-written model never
   looks finished.

Multi-GPU runs are the same function started by ``accelerate launch`` (DeepSpeed ZeRO-3 config in
``workflow/accelerate/``): ``launch`` writes the job as JSON and starts ``python -m
rbio.training.grpo <job.json>`` once per GPU.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rbio.config import (
    TRACKING_URI_ENV,
    GrpoConfig,
    Variant,
    as_params,
    from_params,
    tracking_target,
)
from rbio.data.prompts import prompt_settings
from rbio.io import write_json
from rbio.models import ModelPathError, load_model_and_tokenizer
from rbio.rewards.registry import build_reward_functions
from rbio.sources import go_composition_of
from rbio.tracking import log_step_metrics, open_store, public_uri, run_tags
from rbio.training.checkpoints import (
    CheckpointControl,
    TrainingAlreadyDone,
    latest_checkpoint,
    remove_checkpoints,
    remove_incomplete_checkpoints,
    skip_logged_steps,
    slurm_job_end_time,
)
from rbio.training.checks import check_machine
from rbio.training.heldout import heldout_callbacks, heldout_curve
from rbio.training.interrupt import StopRequest, TrainingInterrupted, run_workers
from rbio.training.mixture import build_training_set
from rbio.training.model_files import ADAPTER_DIR, check_weights_match, merge_lora
from rbio.training.multinode import NodeRole, accelerate_machine_args, train_on_nodes
from rbio.training.progress import progress_callbacks
from rbio.training.run_params import log_training_params
from rbio.training.safe_rewards import RewardFailureMonitor, reward_name, wrap_rewards
from rbio.training.vllm_server import vllm_server_for

log = logging.getLogger(__name__)

# (funcs, weights) for a variant, called with the policy model and tokenizer (go_likelihood
# needs them); tests pass stand-ins.
RewardFactory = Callable[..., tuple[Sequence[Callable], Sequence[float]]]

MLFLOW_RUN_FILE = "mlflow_run.json"  # beside the checkpoints: a resumed job reuses the run
FINGERPRINT_FILE = "fingerprint.json"  # training settings the checkpoints were written with


class RewardConfigError(ValueError):
    """A variant's rewards do not match what the reward registry provides."""


@dataclass(frozen=True)
class GrpoJob:
    """Everything one training job needs: the typed settings the rule passed as params, its
    folders, and the MLflow tags of the model it writes (JSON-serialisable for relaunch)."""

    variant: Variant
    split: str
    grpo: GrpoConfig
    seed: int
    model_base: str  # config model.base: part of the checkpoint fingerprint
    base_model: str  # the prepared base model folder
    prompt_dirs: dict[str, str]
    out_dir: str
    checkpoint_dir: str
    processes: int = 1
    tags: dict[str, str] = field(default_factory=dict)
    validation: str = ""  # the split's validation rows (held-out answers; "" for none)

    def to_json(self, path: str | Path) -> None:
        write_json(path, as_params(self))

    @classmethod
    def from_json(cls, path: str | Path) -> GrpoJob:
        return from_params(cls, json.loads(Path(path).read_text()))


# ---------------------------------------------------------------------------------------------
# Inputs


def check_inputs(job: GrpoJob) -> Variant:
    """Every source has a prompt dataset, the model folder is a model."""
    variant = job.variant
    missing = sorted(set(variant.sources) - set(job.prompt_dirs))
    if missing:
        raise FileNotFoundError(
            f"variant '{variant.name}' trains on source(s) {missing} but no prompt dataset was "
            f"given for them (expected results/prompts/<source>/{job.split}/)"
        )
    base = Path(job.base_model)
    if not (base / "config.json").is_file():
        raise ModelPathError(
            f"base model folder {base} does not exist or has no config.json "
            "(built by the prepare_base_model rule)"
        )
    return variant


def resolve_rewards(
    variant: Variant, funcs: Sequence[Callable], weights: Sequence[float]
) -> tuple[list[Callable], list[float]]:
    """Check the built reward functions against the variant's configured rewards."""
    names = [reward_name(func) for func in funcs]
    missing = sorted(set(variant.rewards) - set(names))
    if missing:
        raise RewardConfigError(
            f"variant '{variant.name}' names reward(s) {missing} that the reward registry did not "
            f"build; it built {names}"
        )
    if not funcs:
        raise RewardConfigError(f"variant '{variant.name}' has no reward functions")
    built = dict(zip(names, map(float, weights), strict=True))
    if list(built.items()) != list(zip(variant.rewards, reward_weights(variant), strict=True)):
        # The training arguments are built before the rewards (they need the model) and take
        # the config's weights: the built rewards must be the config's, in its order.
        raise RewardConfigError(
            f"variant '{variant.name}': the reward registry built {built}, but the config says "
            f"{variant.rewards} (names, order and weights must match)"
        )
    return list(funcs), list(built.values())


def reward_weights(variant: Variant) -> list[float]:
    """The variant's reward weights in the order of its rewards (TRL's ``reward_weights``)."""
    return [float(weight) for weight in variant.rewards.values()]


def drop_long_prompts(dataset, tokenizer, max_tokens: int):
    """Remove prompts longer than ``max_tokens`` after the chat template; returns (dataset, dropped)."""
    lengths = [
        len(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True))
        for prompt in dataset["prompt"]
    ]
    keep = [i for i, n in enumerate(lengths) if n <= max_tokens]
    if not keep:
        raise ValueError(
            f"every training prompt is longer than grpo.max_prompt_length={max_tokens} tokens "
            f"(shortest: {min(lengths)})"
        )
    dropped = len(lengths) - len(keep)
    if dropped:
        log.warning(
            "dropped %d of %d prompts longer than %d tokens", dropped, len(lengths), max_tokens
        )
    return (dataset.select(keep) if dropped else dataset), dropped


# ---------------------------------------------------------------------------------------------
# MLflow


def training_run_tags(job: GrpoJob) -> dict[str, str]:
    """The MLflow tags of the job's run (``job.tags``: the model's provenance tags), and
    ``go_composition`` where the variant's rewards are one of config verifiers.go.composition's."""
    tags = run_tags(
        variant=job.variant.name,
        split=job.split,
        seed=job.seed,
        stage="train",
        provenance_tags=job.tags,
    )
    composition = go_composition_of(job.variant.rewards)
    if composition is not None:
        tags["go_composition"] = composition
    return tags


def prompt_settings_params(job: GrpoJob) -> dict[str, str]:
    """Settings beyond config prompts that the job's prompt datasets were built with (the MLP
    source's ``mlp_confidence``), as MLflow params: read from the datasets' summaries, so they say
    what the rows hold, not what the config says now. {} for a variant without such a source."""
    params: dict[str, str] = {}
    for source in sorted(job.variant.sources):
        if source in job.prompt_dirs:
            params.update(prompt_settings(job.prompt_dirs[source]))
    return params


def training_fingerprint(job: GrpoJob) -> str:
    """Hash of what determines the training trajectory (not evaluation or reporting settings)."""
    # Checkpoint cadence, logging and where the vLLM server listens do not change the trajectory:
    # they may change on resume.
    cadence = (
        "save_steps",
        "save_total_limit",
        "checkpoint_every_minutes",
        "logging_steps",
        "log_completions",
        "vllm_server_host",
        "vllm_server_port",
        "vllm_server_timeout",
    )
    grpo = {k: v for k, v in job.grpo.items() if k not in cadence}
    settings = {
        "grpo": grpo,
        "seed": job.seed,
        "model_base": job.model_base,
        "split": job.split,
        "sources": job.variant.sources,
        "rewards": job.variant.rewards,
        "start_model": start_model_identity(job.base_model),
    }
    # Only where there are any, so checkpoints of variants without such a source still resume.
    prompt_params = prompt_settings_params(job)
    if prompt_params:
        settings["prompt_settings"] = prompt_params
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def start_model_identity(model_dir: str) -> dict[str, Any]:
    """The model GRPO starts from: its folder (the base model, or its SFT model: sft.cold_starts)
    and the settings digest of its provenance record where it has one (a retrained SFT model)."""
    record = Path(model_dir) / "provenance.json"
    params = json.loads(record.read_text()).get("params_digest") if record.is_file() else None
    return {"path": str(model_dir), "params_digest": params}


def check_checkpoint_fingerprint(job: GrpoJob) -> None:
    """Refuse to resume checkpoints written under different training settings."""
    path = Path(job.checkpoint_dir) / FINGERPRINT_FILE
    current = training_fingerprint(job)
    if path.is_file():
        stored = json.loads(path.read_text()).get("fingerprint")
        if stored != current and latest_checkpoint(job.checkpoint_dir) is not None:
            raise RuntimeError(
                f"checkpoints in {job.checkpoint_dir} were written with other training settings "
                f"(fingerprint {stored}, now {current}: grpo, seed, model, sources, rewards or "
                "prompt settings changed); delete that folder to train from scratch"
            )
    write_json(path, {"fingerprint": current})


def open_mlflow_run(job: GrpoJob) -> str:
    """Create (or, after a kill, reuse) the job's MLflow run; point the Trainer's callback at it."""
    uri, experiment_name = tracking_target()
    with open_store(uri, experiment_name) as experiment_id:
        run_id = _create_or_reuse_run(job, experiment_id, public_uri(uri))
    # transformers' MLflowCallback resumes the run named by MLFLOW_RUN_ID.
    os.environ["MLFLOW_RUN_ID"] = run_id
    os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment_name
    os.environ.setdefault("HF_MLFLOW_LOG_ARTIFACTS", "false")
    return run_id


def _create_or_reuse_run(job: GrpoJob, experiment_id: str, uri: str) -> str:
    """The job's run id: the one its checkpoint folder records for the same store (``uri``, as
    :func:`public_uri` writes it) and training settings when the job resumes from a checkpoint,
    else a new run, recorded there. A job that starts over (no checkpoint: killed before the
    first, or its checkpoints removed after a finished model) gets a new run, so that no run
    holds two trainings' steps."""
    import mlflow

    run_file = Path(job.checkpoint_dir) / MLFLOW_RUN_FILE
    run_id = None
    if run_file.is_file() and latest_checkpoint(job.checkpoint_dir) is not None:
        stored = json.loads(run_file.read_text())
        if stored.get("tracking_uri") == uri and stored.get("fingerprint") == training_fingerprint(
            job
        ):
            run_id = stored["run_id"]
    client = mlflow.MlflowClient()
    if run_id is None:
        run = client.create_run(experiment_id, run_name=run_name(job), tags=training_run_tags(job))
        run_id = run.info.run_id
        write_json(
            run_file,
            {"run_id": run_id, "tracking_uri": uri, "fingerprint": training_fingerprint(job)},
        )
    else:  # resumed: the model it will write may come from other code (provenance tags)
        for key, value in training_run_tags(job).items():
            client.set_tag(run_id, key, value)
    # Part of the fingerprint: a resumed run logs the values it already has.
    for key, value in prompt_settings_params(job).items():
        client.log_param(run_id, key, value)
    return run_id


# ---------------------------------------------------------------------------------------------
# Training


def run_name(job: GrpoJob) -> str:
    return f"train {job.variant.name} {job.split} seed{job.seed}"


def grpo_arguments(job: GrpoJob, reward_weights: list[float], cuda: bool):
    """TRL ``GRPOConfig``: config ``grpo``'s TRL arguments as given, the values derived from the
    job, and the settings the pipeline relies on."""
    from trl import GRPOConfig

    return GRPOConfig(
        **job.grpo.trainer_arguments(),
        output_dir=job.checkpoint_dir,
        run_name=run_name(job),
        seed=job.seed,
        data_seed=job.seed,
        # grpo.global_prompts_per_step on any GPU count (TRL generates once per optimizer step).
        # Every training process of the run, on every node (accelerate sets WORLD_SIZE).
        gradient_accumulation_steps=job.grpo.gradient_accumulation_steps(
            int(os.environ.get("WORLD_SIZE", job.processes))
        ),
        reward_weights=reward_weights,
        use_cpu=not cuda,
        # Saves memory on a 3B model; on CPU the tiny model does not need it.
        activation_checkpointing=cuda,
        save_strategy="steps",
        save_only_model=False,  # optimizer + scheduler + RNG: resuming continues the same run
        report_to=["mlflow"],
        disable_tqdm=True,  # rbio.training.progress logs readable lines instead
        dataloader_num_workers=0,
    )


def lora_config(settings: Mapping[str, Any] | None):
    if not settings:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=int(settings["r"]),
        lora_alpha=int(settings["alpha"]),
        lora_dropout=float(settings.get("dropout", 0.0)),
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


class StepTimer(TrainerCallback):
    """Wall time of each optimiser step (for the summary and the benchmark)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)


@dataclass
class TrainingInputs:
    """What one job trains: its TRL arguments, the policy, its tokenizer, the mixed prompts and
    the rewards."""

    args: Any  # trl.GRPOConfig; under ZeRO-3 it keeps DeepSpeed's config alive for the model
    model: Any
    tokenizer: Any
    dataset: Any
    mixture: dict[str, Any]  # what build_training_set drew from each source
    dropped_prompts: int  # longer than grpo.max_prompt_length
    rewards: list[Callable]
    weights: list[float]


def prepare_training(job: GrpoJob, reward_factory: RewardFactory) -> TrainingInputs:
    """Check the machine and the inputs, build the training arguments, then load the model, the
    prompts and the rewards."""
    import torch

    check_machine(job.grpo, processes=job.processes)
    variant = check_inputs(job)
    # Arguments before the model: under accelerate's DeepSpeed ZeRO-3 they register the config
    # (HfDeepSpeedConfig, held by a weak reference) that makes from_pretrained load each rank's
    # shard only; loaded first, every rank held the whole model in host memory.
    args = grpo_arguments(job, reward_weights(variant), cuda=torch.cuda.is_available())
    # fp32 master weights always; grpo.bf16 is autocast (TRL's bf16 argument). bf16 weights
    # without DeepSpeed (one GPU) lose AdamW's ~lr-sized updates to rounding: 0.3% of the tiny
    # model's weights changed in two paper-lr steps (tests/training/test_precision.py).
    model, tokenizer = load_model_and_tokenizer(job.base_model, dtype=torch.float32)
    dataset, mixture = build_training_set(
        {s: job.prompt_dirs[s] for s in variant.sources}, variant.sources, job.seed
    )
    dataset, dropped = drop_long_prompts(dataset, tokenizer, job.grpo.max_prompt_length)
    funcs, weights = reward_factory(variant, model=model, tokenizer=tokenizer)
    funcs, weights = resolve_rewards(variant, funcs, weights)
    return TrainingInputs(args, model, tokenizer, dataset, mixture, dropped, funcs, weights)


def train_grpo(
    job: GrpoJob,
    *,
    reward_factory: RewardFactory = build_reward_functions,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Run (or resume) one GRPO job; returns the training summary. A SIGTERM / SIGUSR1 saves a
    checkpoint and raises ``TrainingInterrupted`` (rbio.training.interrupt)."""
    from trl import GRPOTrainer

    inputs = prepare_training(job, reward_factory)
    monitor, timer = RewardFailureMonitor(), StepTimer()
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        check_checkpoint_fingerprint(job)
        remove_incomplete_checkpoints(job.checkpoint_dir)
    run_id = open_mlflow_run(job) if is_main else None
    if run_id is not None:
        log_training_params(run_id, job, inputs)

    resume = latest_checkpoint(job.checkpoint_dir)
    if resume is not None:
        log.info("resuming from %s", resume)
    with StopRequest() as stop:
        control = CheckpointControl(
            job.grpo.checkpoint_every_minutes, stop, end_time=slurm_job_end_time()
        )
        trainer = GRPOTrainer(
            model=inputs.model,
            reward_funcs=wrap_rewards(inputs.rewards, monitor),
            args=inputs.args,
            train_dataset=inputs.dataset,
            processing_class=inputs.tokenizer,
            peft_config=lora_config(job.grpo.lora),
            callbacks=[monitor, timer, control, *progress_callbacks(run_id), *callbacks]
            + heldout_for(job, inputs.tokenizer, run_id),
        )
        if resume is not None and run_id is not None:
            skip_logged_steps(trainer, run_id)
        started = time.perf_counter()
        _run_trainer(trainer, resume, run_id)
    if control.stopped:  # a checkpoint at this step is saved: the rerun resumes from it
        _end_mlflow_run(run_id, "KILLED")
        # Together: the launcher kills every rank once one exits, the run's status not yet set.
        trainer.accelerator.wait_for_everyone()
        raise TrainingInterrupted(stop.signum or signal.SIGTERM)
    summary = training_summary(
        trainer.state,
        job,
        inputs,
        resumed_from=resume,
        failures=monitor.totals(),
        step_seconds=timer.seconds,
        elapsed=time.perf_counter() - started,
    )
    save_trained_model(trainer, inputs.tokenizer, job, summary, run_id, is_main)
    if is_main:
        _log_final(run_id, summary)
        remove_checkpoints(job.checkpoint_dir, job.out_dir)
    return summary


def heldout_for(job: GrpoJob, tokenizer, run_id: str | None) -> list[TrainerCallback]:
    """The job's held-out answers (rbio.training.heldout), also logged to its MLflow run."""
    log_metrics = None
    if run_id is not None:
        log_metrics = functools.partial(log_step_metrics, run_id, tracking_uri=tracking_target()[0])
    return heldout_callbacks(
        job.validation,
        job.grpo["heldout_every_steps"],
        job.grpo["max_completion_length"],
        job.seed,
        tokenizer,
        log_metrics,
    )


def _run_trainer(trainer, resume: Path | None, run_id: str | None) -> None:
    """``trainer.train``, resuming from ``resume``; a failure marks the MLflow run FAILED."""
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except TrainingAlreadyDone:  # the checkpoint is the last step, now loaded: nothing to train
        log.info("checkpoint %s is the last step: writing the model without training", resume)
    except BaseException:
        _end_mlflow_run(run_id, "FAILED")
        raise


def training_summary(
    state: Any,
    job: GrpoJob,
    inputs: TrainingInputs,
    *,
    resumed_from: Path | None,
    failures: dict[str, Any],
    step_seconds: list[float],
    elapsed: float,
) -> dict[str, Any]:
    """Steps, the reward curve (one point per logging window) and what went into the run;
    ``state`` is the trainer's (its ``log_history`` and ``global_step``)."""
    return {
        "variant": job.variant.name,
        "split": job.split,
        "seed": job.seed,
        "steps": state.global_step,
        "max_steps": job.grpo["max_steps"],
        "resumed_from_step": int(resumed_from.name.split("-")[-1]) if resumed_from else None,
        "rewards": dict(zip(map(reward_name, inputs.rewards), inputs.weights, strict=True)),
        "training_set": {**inputs.mixture, "dropped_long_prompts": inputs.dropped_prompts},
        "reward_curve": reward_curve(state.log_history),
        "heldout_curve": heldout_curve(state.log_history),
        "seconds": round(elapsed, 2),
        "seconds_per_step": round(sum(step_seconds) / len(step_seconds), 4)
        if step_seconds
        else None,
        "step_seconds": _step_time_stats(step_seconds),
        **failures,
    }


def reward_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per logging window: the mean reward and its parts, lengths, loss."""
    curve_keys = (
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "completions/mean_length",
        "loss",
        "grad_norm",
    )
    curve = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        point = {"step": entry["step"], **{k: entry[k] for k in curve_keys if k in entry}}
        point.update(
            {k: v for k, v in entry.items() if k.startswith(("rewards/", "reward_failures/"))}
        )
        curve.append(point)
    return curve


def _step_time_stats(seconds: list[float]) -> dict[str, float] | None:
    """Median / mean / p90 / total step time of this process's steps (resumed runs: since resume)."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return {
        "median": round(ordered[len(ordered) // 2], 4),
        "mean": round(sum(ordered) / len(ordered), 4),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
        "total": round(sum(ordered), 3),
        "steps_timed": len(ordered),
    }


def save_trained_model(
    trainer, tokenizer, job: GrpoJob, summary: dict, run_id: str | None, is_main: bool
) -> None:
    """Write the final model folder with one rename, once its weights fit the base model."""
    out_dir = Path(job.out_dir)
    staging = out_dir.parent / f".staging-{out_dir.name}"
    if is_main and staging.exists():
        shutil.rmtree(staging)
    _save_weights(trainer, job, staging, is_main)
    if not is_main:
        return
    # A tensor saved empty or misshapen (partitioned parameters) fails here, naming it, not in
    # evaluation.
    check_weights_match(job.base_model, staging)
    tokenizer.save_pretrained(staging)
    trainer.state.save_to_json(str(staging / "trainer_state.json"))
    write_json(staging / "training_summary.json", summary)
    write_json(
        staging / "run.json",
        {
            "run_id": run_id,
            "tracking_uri": public_uri(os.environ.get(TRACKING_URI_ENV)),
            "variant": job.variant.name,
            "split": job.split,
            "seed": job.seed,
        },
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)


def _save_weights(trainer, job: GrpoJob, staging: Path, is_main: bool) -> None:
    """The trained weights in ``staging`` as safetensors, in the training precision (bf16 with
    grpo.bf16, as the fp32 master weights are only for the optimizer). Every process takes part
    in the trainer's save (ZeRO-3 gathers the shards); a LoRA adapter is saved by the trainer,
    then merged into the base model by the main process alone."""
    import torch

    dtype = torch.bfloat16 if job.grpo["bf16"] else torch.float32
    lora = job.grpo.lora is not None
    trainer.accelerator.wait_for_everyone()
    if not lora and not trainer.is_deepspeed_enabled:
        # ZeRO-3 saves 16-bit weights itself (zero3_save_16bit_model); one process casts here.
        trainer.accelerator.unwrap_model(trainer.model).to(dtype)
    weights_dir = staging / ADAPTER_DIR if lora else staging
    trainer.save_model(str(weights_dir))
    trainer.accelerator.wait_for_everyone()
    if not is_main:
        return
    # The pickle Trainer.save_model writes beside the weights: not kept.
    (weights_dir / "training_args.bin").unlink(missing_ok=True)
    if lora:
        merge_lora(job.base_model, weights_dir, staging, dtype)


def _end_mlflow_run(run_id: str | None, status: str) -> None:
    import mlflow

    if run_id is None:
        return
    if mlflow.active_run() is not None:
        mlflow.end_run(status=status)
    else:
        mlflow.MlflowClient().set_terminated(run_id, status=status)


def _log_final(run_id: str | None, summary: dict[str, Any]) -> None:
    """Run-level results the per-step metrics do not carry."""
    import mlflow

    if run_id is None:
        return
    client = mlflow.MlflowClient()
    failures = summary.get("reward_failures", {})
    client.log_metric(run_id, "reward_failures_total", float(sum(failures.values())))
    if summary["seconds_per_step"] is not None:
        client.log_metric(run_id, "seconds_per_step", summary["seconds_per_step"])
    client.log_dict(run_id, summary, "training_summary.json")
    client.set_terminated(run_id, status="FINISHED")


# ---------------------------------------------------------------------------------------------
# Launching


def launch(job: GrpoJob, accelerate_config: str | Path | None = None, nodes: int = 1) -> None:
    """Train in this process (one device), or under ``accelerate launch`` across ``job.processes``
    GPUs (of each of ``nodes`` nodes); in vLLM server mode the last GPU(s) serve generation and
    the others train."""
    if nodes > 1:
        train_on_nodes(job, accelerate_config, nodes)
        return
    with vllm_server_for(job) as training_job:
        launch_processes(training_job, accelerate_config)


def launch_processes(
    job: GrpoJob, accelerate_config: str | Path | None, machine_args: Sequence[str] = ()
) -> None:
    """This node's training processes; ``machine_args`` place them among several nodes'
    (``rbio.training.multinode``: its ``--num_processes``, all nodes', comes last and wins)."""
    if job.processes <= 1 and not machine_args:
        train_grpo(job)
        return
    # Once, before starting workers: e.g. more GPU processes than visible devices.
    check_machine(job.grpo, processes=job.processes)
    if accelerate_config is None or not Path(accelerate_config).is_file():
        raise FileNotFoundError(
            f"accelerate config {accelerate_config} does not exist (grpo.deepspeed_config)"
        )
    spec = Path(job.checkpoint_dir) / "job.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    job.to_json(spec)
    command = launch_command(job, accelerate_config, spec, machine_args)
    log.info("launching: %s", " ".join(command))
    run_workers(command)


def launch_command(
    job: GrpoJob,
    accelerate_config: str | Path,
    spec: str | Path,
    machine_args: Sequence[str] = (),
) -> list[str]:
    """``accelerate launch`` of ``job.processes`` processes training the job written to ``spec``.
    Mixed precision follows grpo.bf16 (the command line wins over the accelerate config file): a
    precision fixed in that file would contradict TRL's bf16 argument and stop the run."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(accelerate_config),
        "--num_processes", str(job.processes), *machine_args,
        "--mixed_precision", "bf16" if job.grpo["bf16"] else "no",
        "-m", "rbio.training.grpo", str(spec),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of each process under ``accelerate launch``: ``python -m rbio.training.grpo
    job.json``; and of each node's launcher in a multi-node job (``rbio.training.multinode``):
    ``python -m rbio.training.grpo --node <accelerate config> <job.json>``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO)
    if len(argv) == 3 and argv[0] == "--node":
        job = GrpoJob.from_json(argv[2])
        # job.processes: the GPUs of each node (the rule's gres gpu:G).
        machine_args = accelerate_machine_args(NodeRole.from_slurm(os.environ), job.processes)
        launch_processes(job, argv[1], machine_args)
        return
    if len(argv) != 1:
        raise SystemExit(
            "usage: python -m rbio.training.grpo <job.json> | --node <accelerate config> <job.json>"
        )
    train_grpo(GrpoJob.from_json(argv[0]))


if __name__ == "__main__":
    main()
