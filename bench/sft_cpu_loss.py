"""Benchmark: SFT on CPU, TRL's loss vs the completion-positions loss (same steps and data).

Both runs train the EXP variant's SFT set from the same base model, seed and settings (config
``sft`` of the chosen configuration files); printed: seconds per step and the logged losses, which
must agree (the two losses are the same number, ``rbio.training.completion_loss``). Needs a
pipeline run's base model and EXP prompts, e.g. after

    snakemake results/prompts/exp/loco_k562/summary.json results/models/base/config.json \
        --configfile config/tiny.yaml config/tiny_panel.yaml

Run (one thread, as timed in the README):

    OMP_NUM_THREADS=1 .venv/bin/python bench/sft_cpu_loss.py --steps 40 \
        --config config.yaml config/tiny.yaml config/tiny_panel.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def run(trainer_class, args, cfg) -> dict:
    import torch

    from rbio.config import SftConfig
    from rbio.models import load_model_and_tokenizer
    from rbio.training.sft import SFT_COLUMNS, SftJob, sft_arguments, sft_dataset

    settings = SftConfig({**cfg.sft, "max_steps": args.steps, "logging_steps": args.steps // 4})
    job = SftJob(
        variant=cfg.variants["EXP"],
        split=args.split,
        sft=settings,
        seed=cfg.seed,
        base_model=args.base,
        prompt_dirs={"exp": args.prompts},
        out_dir="",
    )
    model, tokenizer = load_model_and_tokenizer(job.base_model, dtype=torch.float32)
    dataset, _ = sft_dataset(job.prompt_dirs, job.variant, job.seed)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = trainer_class(
            model=model,
            args=sft_arguments(job, scratch, cuda=False),
            train_dataset=dataset.select_columns(list(SFT_COLUMNS)),
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    losses = [round(e["loss"], 4) for e in trainer.state.log_history if "loss" in e]
    return {"seconds_per_step": round(seconds / args.steps, 3), "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", nargs="+", default=["config.yaml", "config/tiny.yaml"])
    parser.add_argument("--base", default="results/models/base")
    parser.add_argument("--prompts", default="results/prompts/exp/loco_k562")
    parser.add_argument("--split", default="loco_k562")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from trl import SFTTrainer

    from rbio.config_file import read_config
    from rbio.training.completion_loss import CompletionLossSFTTrainer

    cfg = read_config(*args.config)
    results = {
        "trl_loss": run(SFTTrainer, args, cfg),
        "completion_positions_loss": run(CompletionLossSFTTrainer, args, cfg),
    }
    trl, ours = results["trl_loss"], results["completion_positions_loss"]
    results["speedup"] = round(trl["seconds_per_step"] / ours["seconds_per_step"], 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
