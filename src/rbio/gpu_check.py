"""The GPU paths of training and evaluation, run for real on a tiny random Qwen2 in minutes.

Nothing here can run without CUDA, so every path that only a GPU takes is exercised by one
check, each through the pipeline's own code (``rbio.training.grpo.launch``,
``rbio.evaluation.generate.run_evaluation``) on the tiny model the pipeline builds
(``rbio.training.tiny_model``) and a few synthetic PerturbQA-style prompts:

- ``bf16``: GRPO steps with bf16 mixed precision and HF generation;
- ``vllm_colocate``: GRPO steps generating with vLLM inside the training process;
- ``vllm_server``: GRPO steps with ``trl vllm-serve`` on the last GPU (needs 2 GPUs: NCCL weight
  sync cannot join two ranks on one device);
- ``zero3``: GRPO steps under accelerate + DeepSpeed ZeRO-3 over all visible GPUs (needs 2);
- ``lora``: LoRA training, adapter save and merge; the written model must load and generate;
- ``eval_vllm``: evaluation of the trained model through vLLM.

Each prints seconds per step (or per question) and completion tokens per second. ``--list`` and
``--dry-run`` run without a GPU: the plan for a number of GPUs, and every check's job built and
its TRL arguments validated (what the unit test runs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rbio.config import GrpoConfig
from rbio.config_file import deep_merge, load_config

REPO = Path(__file__).resolve().parents[2]
SPLIT = "loco_k562"
# Gene pairs for synthetic prompts (labels alternate): enough for a few steps and questions.
PAIRS = [
    ("TP53", "MYC"), ("GATA1", "HBG2"), ("RPL3", "ZNF217"), ("MYC", "GATA1"),
    ("KRAS", "EGFR"), ("BRCA1", "ATM"), ("SOX2", "POU5F1"), ("CDK4", "RB1"),
]  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    min_gpus: int
    grpo: dict[str, Any]  # changes to the tiny preset's grpo (bf16 on: GPU paths)
    processes: str = "one"  # "one" GPU, or "all" visible GPUs


CHECKS = (
    Check("bf16", "GRPO steps, bf16 mixed precision, HF generation", 1, {"use_vllm": False}),
    Check("vllm_colocate", "GRPO steps, vLLM colocated in the training process", 1,
          {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.2}),
    Check("vllm_server", "GRPO steps, trl vllm-serve on the last GPU", 2,
          {"use_vllm": True, "vllm_mode": "server", "vllm_server_port": 8765}, "all"),
    Check("zero3", "GRPO steps, DeepSpeed ZeRO-3 over all GPUs", 2, {"use_vllm": False}, "all"),
    Check("lora", "LoRA GRPO steps, adapter save and merge", 1,
          {"use_vllm": False, "lora": {"r": 8, "alpha": 16}}),
    Check("eval_vllm", "evaluation of the trained model through vLLM", 1, {}),
)  # fmt: skip


def plan(gpus: int) -> list[tuple[Check, str | None]]:
    """Every check with the reason it is skipped on ``gpus`` GPUs (None: it runs)."""
    return [
        (check, None if gpus >= check.min_gpus else f"needs {check.min_gpus} GPUs, {gpus} here")
        for check in CHECKS
    ]


def grpo_settings(check: Check, steps: int, processes: int) -> GrpoConfig:
    """The tiny preset's grpo (config.yaml + config/tiny.yaml) on the GPU paths, ``steps`` long,
    one device batch of prompts per training process and step."""
    import yaml

    raw = deep_merge(
        yaml.safe_load((REPO / "config.yaml").read_text()),
        yaml.safe_load((REPO / "config/tiny.yaml").read_text()),
    )
    changes = {"bf16": True, "max_steps": steps, "save_steps": steps, "logging_steps": 1}
    grpo = {**raw["grpo"], **changes, **check.grpo}
    training = processes - GrpoConfig(grpo).vllm_server_gpus
    prompts = grpo["per_device_train_batch_size"] // grpo["num_generations"] * max(1, training)
    raw = deep_merge(raw, {"grpo": {**changes, **check.grpo, "global_prompts_per_step": prompts}})
    return load_config(raw).grpo


def prompt_rows(count: int) -> list[dict[str, Any]]:
    """PerturbQA-style EXP prompts (the prompt stage's messages and columns)."""
    from rbio.data.prompts import build_messages

    rows = []
    for index in range(count):
        pert, gene = PAIRS[index % len(PAIRS)]
        label = index % 2
        rows.append(
            dict(
                prompt=build_messages(pert, gene, "k562"),
                source="exp",
                cell_line="K562",
                pert=pert,
                gene=gene,
                label=label,
                negated=False,
                template_id=0,
                classes="no|yes",
                class_confidences="0|1" if label else "1|0",
                keywords=[pert, gene],
                pert_go_terms=[],
                gene_go_terms=[],
            )  # fmt: skip
        )
    return rows


def prepare(work: Path, seed: int = 0) -> tuple[Path, Path, Path]:
    """The tiny base model, an EXP prompt dataset and a test split, under ``work``."""
    import pandas as pd
    from datasets import Dataset

    from rbio.training.tiny_model import build_tiny_model

    rows = prompt_rows(32)
    prompts = work / "prompts" / "exp"
    Dataset.from_list(rows).save_to_disk(str(prompts))
    corpus = [m["content"] for m in rows[0]["prompt"]] + [g for p in PAIRS for g in p]
    base = build_tiny_model(work / "base", corpus, seed=seed)
    test = work / "test.parquet"
    frame = pd.DataFrame([{k: row[k] for k in ("pert", "gene", "label")} for row in rows])
    frame = frame.assign(cell_line="k562", pert_original=frame.pert, gene_original=frame.gene)
    frame = frame.assign(direction=None, split="test")
    frame.assign(pair_seen_elsewhere=False, pert_seen_elsewhere=False).to_parquet(test)
    return base, prompts, test


def training_job(check: Check, work: Path, base: Path, prompts: Path, steps: int, gpus: int):
    from rbio.config_file import read_config
    from rbio.training.grpo import GrpoJob

    cfg = read_config(REPO / "config.yaml", REPO / "config/tiny.yaml")
    processes = gpus if check.processes == "all" else 1
    return GrpoJob(
        variant=cfg.variants["EXP"],
        split=SPLIT,
        grpo=grpo_settings(check, steps, processes),
        seed=cfg.seed,
        model_base="tiny",
        base_model=str(base),
        prompt_dirs={"exp": str(prompts)},
        out_dir=str(work / check.name / "model"),
        checkpoint_dir=str(work / check.name / "checkpoints"),
        processes=processes,
    )


def training_result(job) -> dict[str, Any]:
    """s/step and completion tokens/s of a finished job (its training_summary.json)."""
    summary = json.loads((Path(job.out_dir) / "training_summary.json").read_text())
    lengths = [p["completions/mean_length"] for p in summary["reward_curve"]]
    per_step = summary["seconds_per_step"]
    completions = job.grpo.completions_per_step
    tokens = sum(lengths) / len(lengths) * completions if lengths else 0.0
    return {
        "steps": summary["steps"],
        "s_per_step": per_step,
        "completion_tokens_per_s": round(tokens / per_step, 1) if per_step else None,
    }


def check_model_loads(model_dir: str) -> None:
    """The written model folder loads and generates (a corrupt merge fails here)."""
    import torch

    from rbio.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir)
    inputs = tokenizer("Is TP53", return_tensors="pt")
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=4, do_sample=False)


def evaluation_result(model_dir: str, test: Path, out: Path) -> dict[str, Any]:
    from rbio.evaluation.generate import EvaluationRequest, GenerationSettings, run_evaluation

    settings = GenerationSettings(greedy=True, num_samples=4, max_new_tokens=32)
    request = EvaluationRequest(
        model_name="gpu-check", model_dir=model_dir, test_parquet=str(test), split=SPLIT,
        prompt_style="nocot", settings=settings, n_bootstrap=0,
        predictions_path=str(out / "predictions.parquet"),
        metrics_path=str(out / "metrics.parquet"), summary_path=str(out / "evaluation.json"),
        engine="vllm",
    )  # fmt: skip
    run_evaluation(request)
    sidecar = json.loads((out / "evaluation.json").read_text())
    return {
        "questions": sidecar["questions"],
        "s_per_question": round(sidecar["generation_seconds"] / sidecar["questions"], 4),
        "questions_per_s": round(sidecar["questions_per_second"], 2),
    }


def run_check(check: Check, work: Path, inputs: tuple[Path, Path, Path], steps: int, gpus: int):
    """Run one check; returns its measurements."""
    from rbio.training.grpo import launch

    base, prompts, test = inputs
    if check.name == "eval_vllm":
        trained = work / "bf16" / "model"
        return evaluation_result(str(trained if trained.is_dir() else base), test, work / "eval")
    job = training_job(check, work, base, prompts, steps, gpus)
    started = time.perf_counter()
    launch(job, accelerate_config=REPO / job.grpo.deepspeed_config)
    result = {**training_result(job), "wall_s": round(time.perf_counter() - started, 1)}
    check_model_loads(job.out_dir)
    return result


def dry_run(work: Path, steps: int, gpus: int, checks: Sequence[Check]) -> dict[str, Any]:
    """Every check's job, built on CPU and its TRL arguments validated by TRL (no training)."""
    from rbio.training.grpo import grpo_arguments

    base, prompts, _ = prepare(work)
    built = {}
    for check in checks:
        if check.name == "eval_vllm":
            built[check.name] = {"engine": "vllm"}
            continue
        job = training_job(check, work, base, prompts, steps, gpus)
        # bf16 is a GPU setting; TRL checks everything else here. Server mode trains on the
        # GPUs the server leaves (rbio.training.vllm_server does the same at launch).
        training = job.processes - job.grpo.vllm_server_gpus
        cpu_job = replace(job, processes=training, grpo=GrpoConfig({**job.grpo, "bf16": False}))
        args = grpo_arguments(cpu_job, [1.0] * len(job.variant.rewards), cuda=False)
        built[check.name] = {
            "processes": job.processes,
            "use_vllm": args.use_vllm,
            "vllm_mode": args.vllm_mode,
            "lora": job.grpo.lora,
            "max_steps": args.max_steps,
        }
    return built


def main_run(
    work: Path, steps: int, gpus: int, report: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run every check the GPUs allow; a failing check is reported and the others still run."""
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    inputs = prepare(work)
    results: dict[str, Any] = {}
    for check, skipped in plan(gpus):
        if skipped:
            results[check.name] = {"skipped": skipped}
        else:
            try:
                results[check.name] = run_check(check, work, inputs, steps, gpus)
            except Exception as error:  # noqa: BLE001 (reported, the other checks still run)
                results[check.name] = {"failed": f"{type(error).__name__}: {error}"[:2000]}
        report(f"{check.name}: {json.dumps(results[check.name])}")
    return results
