"""What distinguishes one GRPO run from another, as MLflow params and an artifact.

transformers' MLflow callback logs every ``TrainingArguments`` field, so MLflow's compare view
told runs apart by ``output_dir`` and ``run_name``; what makes a variant (its prompt sources and
their weights, its rewards and theirs, the base model, how many prompts each source gave) was
not there. :func:`training_params` names each of them (``source/<name>/weight``,
``reward/<name>/weight``, ...), and ``resolved_config.yaml`` holds the job's settings as the
workflow resolved them (config file, overlays and ``--config`` merged).
"""

from __future__ import annotations

from typing import Any

from rbio.config import as_params

# Jobs and inputs are rbio.training.grpo's GrpoJob and TrainingInputs, untyped here: that module
# imports this one.
GrpoJob = TrainingInputs = Any

RESOLVED_CONFIG = "resolved_config.yaml"


def training_params(job: GrpoJob, inputs: TrainingInputs) -> dict[str, str]:
    """The run's rbio params: variant, split, seed, base model, each source's weight and prompt
    counts (available, used in the mixture), each reward's weight, the training set's size."""
    params: dict[str, Any] = {
        "variant": job.variant.name,
        "split": job.split,
        "seed": job.seed,
        "base_model": job.model_base,
        "sources": ",".join(sorted(job.variant.sources)),
        # Sorted: a job read back from JSON (a resumed or multi-GPU one) has its keys sorted,
        # and MLflow refuses a param whose value changes.
        "rewards": ",".join(sorted(job.variant.rewards)),
        "training_prompts": inputs.mixture.get("rows", len(inputs.dataset)),
        "dropped_long_prompts": inputs.dropped_prompts,
    }
    for source, weight in sorted(job.variant.sources.items()):
        params[f"source/{source}/weight"] = weight
        drawn = inputs.mixture.get("sources", {}).get(source, {})
        for count in ("available", "used"):
            if count in drawn:
                params[f"source/{source}/prompts_{count}"] = drawn[count]
    for reward, weight in job.variant.rewards.items():
        params[f"reward/{reward}/weight"] = weight
    return {key: str(value) for key, value in params.items()}


def resolved_config(job: GrpoJob) -> dict[str, Any]:
    """The job's settings as plain values: variant, split, seed, base model, every ``grpo`` key."""
    settings = as_params(job)
    return {
        key: settings[key]
        for key in ("variant", "split", "seed", "model_base", "grpo", "processes")
    }


def log_training_params(run_id: str, job: GrpoJob, inputs: TrainingInputs) -> None:
    """Log :func:`training_params` and ``resolved_config.yaml`` on the run (a resumed run logs the
    same values again: the checkpoint fingerprint guarantees it)."""
    import mlflow
    import yaml
    from mlflow.entities import Param

    client = mlflow.MlflowClient()
    params = [Param(key, value) for key, value in training_params(job, inputs).items()]
    client.log_batch(run_id, params=params)
    text = yaml.safe_dump(resolved_config(job), sort_keys=False)
    client.log_text(run_id, text, RESOLVED_CONFIG)
