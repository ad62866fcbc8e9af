"""GPU check: the real GPU paths (bf16, vLLM colocate and server, ZeRO-3, LoRA, vLLM evaluation)
on a tiny random Qwen2, with seconds per step and tokens per second (``rbio.gpu_check``).

    .venv/bin/python bench/gpu_check.py --list          # the plan on this machine's GPUs
    .venv/bin/python bench/gpu_check.py --dry-run       # build and validate every job, no GPU
    .venv/bin/python bench/gpu_check.py --steps 8       # run (minutes on one GPU; gpu extra)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rbio import gpu_check


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the checks and which run")
    parser.add_argument("--dry-run", action="store_true", help="build every job on CPU, no GPU")
    parser.add_argument("--gpus", type=int, help="GPUs to plan for (default: the visible ones)")
    parser.add_argument("--steps", type=int, default=8, help="GRPO steps per training check")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.gpus is None:
        import torch

        args.gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if args.list:
        result = {c.name: skipped or f"runs: {c.what}" for c, skipped in gpu_check.plan(args.gpus)}
    elif args.dry_run:
        runnable = [c for c, skipped in gpu_check.plan(max(args.gpus, 2)) if not skipped]
        result = gpu_check.dry_run(work, args.steps, max(args.gpus, 2), runnable)
    else:
        result = gpu_check.main_run(work, args.steps, args.gpus)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
