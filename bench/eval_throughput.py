"""Benchmark: batched evaluation generation vs the authors' one-question-at-a-time loop.

Both sides use the same model, the same test questions (training prompt, real PerturbQA pairs),
the same greedy decoding and the same token budget; the loop mirrors rbio's ``inference.py``
(render one chat, tokenize it, ``generate``, decode), the batched side is
``rbio.evaluation.generate.generate_hf`` (length-sorted, left-padded batches). Run side by side
in one process, on the tiny CPU model:

    OMP_NUM_THREADS=1 .venv/bin/python bench/eval_throughput.py [--questions 256]

Goal (issue: evaluation): batched >= 10x the loop's questions per second. The script checks that
both sides give identical greedy answers and exits non-zero when the goal is missed.
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
REPO = Path(__file__).resolve().parents[1]
GOAL = 10.0


def questions(n: int) -> list[tuple[str, str, str]]:
    """(pert, gene, cell line) of n real test pairs (synthetic names when the data is absent)."""
    data = Path(os.environ.get("RBIO_DATA_DIR") or REPO.parent / "shared" / "data")
    table = data / "perturbqa" / "k562-de.csv"
    if table.is_file():
        import pandas as pd

        rows = pd.read_csv(table)
        rows = rows[rows["split"] == "test"].sample(n=n, random_state=0)
        return [(p, g, "k562") for p, g in zip(rows["pert"], rows["gene"], strict=True)]
    return [(f"PERT{i % 37}", f"GENE{i % 101}", "k562") for i in range(n)]


def one_at_a_time(model, tokenizer, conversations, max_new_tokens: int) -> list[str]:
    """The authors' loop: one chat at a time through ``generate`` (greedy)."""
    import torch

    answers = []
    for messages in conversations:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        new = output[0, inputs["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new, skip_special_tokens=True))
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", help="model folder (default: build the tiny model)")
    args = parser.parse_args()

    import torch

    from rbio.data.prompts import SYSTEM_PROMPTS, build_messages
    from rbio.evaluation.generate import GenerationSettings, generate_hf
    from rbio.models import load_model_and_tokenizer
    from rbio.training.tiny_model import build_tiny_model

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    pairs = questions(args.questions)
    conversations = [build_messages(p, g, line, style="nocot") for p, g, line in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_tiny_model(
            Path(tmp) / "tiny", [*SYSTEM_PROMPTS.values(), *(p for p, _, _ in pairs)], seed=0
        )
        model, tokenizer = load_model_and_tokenizer(model_dir)
        model.eval()
        settings = GenerationSettings(
            greedy=True, num_samples=0, max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
        )  # fmt: skip
        generate_hf(model, tokenizer, conversations[:4], settings, progress=False)  # warm-up

        start = time.perf_counter()
        loop_answers = one_at_a_time(model, tokenizer, conversations, args.max_new_tokens)
        loop_seconds = time.perf_counter() - start

        start = time.perf_counter()
        batched = generate_hf(model, tokenizer, conversations, settings, progress=False)
        batched_seconds = time.perf_counter() - start

    identical = sum(a == b for a, b in zip(loop_answers, batched.greedy, strict=True))
    result = {
        "questions": len(conversations),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "loop_questions_per_second": round(len(conversations) / loop_seconds, 2),
        "batched_questions_per_second": round(len(conversations) / batched_seconds, 2),
        "speedup": round(loop_seconds / batched_seconds, 1),
        "identical_greedy_answers": f"{identical}/{len(conversations)}",
        "goal_speedup": GOAL,
    }
    print(json.dumps(result, indent=2))
    return 0 if result["speedup"] >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
