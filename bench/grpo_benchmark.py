"""Speed of GRPO training on the tiny preset (a benchmark, not a test).

Trains the tiny model (config/tiny.yaml settings, the reward registry's rewards of a variant) on
PerturbQA K562 pairs for a fixed number of steps and reports

- seconds per optimiser step (median, mean, 90th percentile),
- the share of step time spent in the reward functions (target: < 5%),
- per reward, the seconds per call.

Prompts are built with the prompt stage's own ``build_messages`` from ``$RBIO_DATA_DIR``
(default ``../shared/data``) K562 rows, balanced yes/no, with EXP confidences. Nothing is written
under results/; MLflow goes to a temporary sqlite store.

    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_benchmark.py --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def exp_prompt_rows(data_dir: Path, n: int, seed: int) -> list[dict]:
    import pandas as pd

    from rbio.data.prompts import build_messages

    table = pd.read_csv(data_dir / "perturbqa" / "k562-de.csv")
    table = table[table["split"] == "train"]
    half = n // 2
    rows = pd.concat(
        [
            table[table["label"] == 1].sample(half, random_state=seed),
            table[table["label"] == 0].sample(half, random_state=seed),
        ]
    )
    return [
        {
            "prompt": build_messages(r.pert, r.gene, "k562"),
            "source": "exp",
            "cell_line": "K562",
            "pert": r.pert,
            "gene": r.gene,
            "label": int(r.label),
            "negated": False,
            "template_id": 0,
            "classes": "no|yes",
            "class_confidences": "0|1" if r.label else "1|0",
            "keywords": [r.pert, r.gene],
            "pert_go_terms": [],
            "gene_go_terms": [],
        }
        for r in rows.itertuples()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--variant", default="EXP", help="variant whose registry rewards are used")
    parser.add_argument("--prompts", type=int, default=64)
    args = parser.parse_args()

    import yaml
    from datasets import Dataset

    from rbio.config_file import deep_merge, load_config
    from rbio.training.grpo import GrpoJob, train_grpo
    from rbio.training.tiny_model import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="grpo-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    data_dir = Path(os.environ.get("RBIO_DATA_DIR") or REPO.parent / "shared" / "data")

    raw = deep_merge(
        yaml.safe_load((REPO / "config.yaml").read_text()),
        yaml.safe_load((REPO / "config/tiny.yaml").read_text()),
    )
    raw = deep_merge(
        raw, {"grpo": {"max_steps": args.steps, "save_steps": args.steps, "logging_steps": 10}}
    )
    cfg = load_config(raw)
    variant = cfg.variants[args.variant]

    rows = exp_prompt_rows(data_dir, args.prompts, cfg.seed)
    prompt_dirs = {}
    for source in variant.sources:
        path = work / "prompts" / source
        Dataset.from_list([{**row, "source": source} for row in rows]).save_to_disk(str(path))
        prompt_dirs[source] = str(path)
    corpus = sorted({g for row in rows for g in row["keywords"]}) + [
        m["content"] for m in rows[0]["prompt"]
    ]
    base = build_tiny_model(work / "base", corpus, seed=cfg.seed)

    job = GrpoJob(
        variant=variant,
        split="loco_k562",
        grpo=cfg.grpo,
        seed=cfg.seed,
        model_base=cfg.model_base,
        base_model=str(base),
        prompt_dirs=prompt_dirs,
        out_dir=str(work / "model"),
        checkpoint_dir=str(work / "checkpoints"),
    )
    summary = train_grpo(job)

    steps = summary["step_seconds"]
    reward_seconds = summary["reward_seconds"]
    calls = summary["steps"]
    result = {
        "variant": args.variant,
        "steps": summary["steps"],
        "completions_per_step": cfg.grpo.completions_per_step,
        "max_completion_length": cfg.grpo["max_completion_length"],
        "seconds_per_step_median": steps["median"],
        "seconds_per_step_mean": steps["mean"],
        "seconds_per_step_p90": steps["p90"],
        "reward_share_of_step_time": round(sum(reward_seconds.values()) / steps["total"], 4),
        "reward_ms_per_call": {
            name: round(1000 * s / calls, 3) for name, s in reward_seconds.items()
        },
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
