"""Benchmark: answer-likelihood P(yes) vs the share of "yes" among k sampled answers.

The same model answers the same test questions; the scores compared are
- ``vote_k``: the share of "yes" among k answers sampled at the evaluation temperature (what
  evaluation reports as P(yes) today; k = 2 is the tiny preset, 5 the paper's);
- ``likelihood_after_vote_k``: the likelihood P(yes) teacher-forced after those k sampled traces
  and averaged (what evaluation stores as ``p_yes_likelihood``); its cost is the sampling plus one
  forward pass per trace;
- ``likelihood_direct``: the likelihood P(yes) right after the prompt and ``<answer>`` (no
  reasoning generated): one forward pass per question.
Each gets its seconds, AUROC and per-gene AUROC (PerturbQA's metric).

A random tiny model ranks nothing, so the model is first warmed up (a plain completion-only loop,
timed apart) on a synthetic task with a known structure: P(DE) = sigmoid(effect of the perturbation
+ effect of the gene - 1.5), labels drawn from it; the test pairs are unseen, their perturbations
and genes are not. The warm-up teaches ``<think> PERT GENE </think><answer> yes|no</answer>``,
so sampled answers parse and voting works as it would on a trained model. Run (about 2 minutes of
CPU on one core, mostly the warm-up; longer in wall time on a shared machine):

    OMP_NUM_THREADS=1 .venv/bin/python bench/likelihood_vs_voting.py [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

N_PERTS, N_GENES = 16, 16  # 256 pairs: few enough for the tiny model to learn the effects


def synthetic_task(seed: int):
    """Every (pert, gene) pair with its drawn label and true P(DE)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    # Letter-only symbols: digits are split one per token (Qwen2's pre-tokenizer), letters merge,
    # so each name is a single token of the tiny vocabulary and the effects are learnable quickly.
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    names = list(dict.fromkeys("".join(rng.choice(letters, 4)) for _ in range(4 * N_PERTS)))
    perts, genes = names[:N_PERTS], names[N_PERTS : N_PERTS + N_GENES]
    pert_effect = rng.normal(0, 3.0, N_PERTS)
    gene_effect = rng.normal(0, 1.0, N_GENES)
    logit = pert_effect[:, None] + gene_effect[None, :] - 1.5
    p_de = 1 / (1 + np.exp(-logit.ravel()))
    return pd.DataFrame(
        {
            "pert": np.repeat(perts, N_GENES),
            "gene": np.tile(genes, N_PERTS),
            "cell_line": "k562",
            "p_de": p_de,
            "label": (rng.random(len(p_de)) < p_de).astype(int),
        }
    )


def warm_up(model, tokenizer, prompts, answers, steps: int, lr: float, seed: int) -> None:
    """Completion-only next-token loss on ``prompt + answer`` (the prompt's tokens masked)."""
    import torch

    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    batch_size = 32
    prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    answer_ids = [tokenizer.encode(a, add_special_tokens=False) for a in answers]
    pad = tokenizer.pad_token_id
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        batch = rng.choice(len(prompts), batch_size, replace=False)
        sequences = [prompt_ids[i] + answer_ids[i] for i in batch]
        width = max(map(len, sequences))
        ids = torch.full((batch_size, width), pad)
        labels = torch.full((batch_size, width), -100)
        for row, i in enumerate(batch):
            ids[row, : len(sequences[row])] = torch.tensor(sequences[row])
            start = len(prompt_ids[i])
            labels[row, start : len(sequences[row])] = torch.tensor(answer_ids[i])
        loss = model(input_ids=ids, attention_mask=(ids != pad).long(), labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="warm-up steps")
    parser.add_argument("--lr", type=float, default=3e-3, help="warm-up learning rate")
    parser.add_argument("--test-questions", type=int, default=96)
    parser.add_argument("--k", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from rbio.data.prompts import SYSTEM_PROMPTS, question
    from rbio.evaluation.generate import (
        GenerationSettings,
        generate_hf,
        p_yes,
        question_messages,
        render_prompts,
    )
    from rbio.evaluation.likelihood import likelihood_p_yes
    from rbio.evaluation.metrics import aurocs
    from rbio.models import load_model_and_tokenizer
    from rbio.rewards.parsing import parse_answer
    from rbio.training.tiny_model import IM_END, build_tiny_model

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    task = synthetic_task(args.seed)
    test = task.sample(n=args.test_questions, random_state=args.seed)
    train = task.drop(test.index)
    answers = [
        f"<think> {p} {g} </think><answer> {'yes' if y else 'no'}</answer>{IM_END}"
        for p, g, y in zip(train["pert"], train["gene"], train["label"], strict=True)
    ]
    corpus = [*SYSTEM_PROMPTS.values(), question("PERT", "GENE", "k562"), *answers]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_model_and_tokenizer(
            build_tiny_model(Path(tmp) / "tiny", corpus, seed=args.seed)
        )
    train_prompts = render_prompts(tokenizer, question_messages(train, "nocot"))
    started = time.perf_counter()
    warm_up(model, tokenizer, train_prompts, answers, args.steps, args.lr, args.seed)
    warm_up_seconds = time.perf_counter() - started

    conversations = question_messages(test, "nocot")
    prompts = render_prompts(tokenizer, conversations)
    label, gene = test["label"].to_numpy(), test["gene"].to_numpy()
    results: dict[str, dict[str, float]] = {}

    def record(name: str, score, seconds: float, **extra) -> None:
        auroc, per_gene, _ = aurocs(label, np.asarray(score, dtype=float), gene)
        results[name] = {
            "seconds": round(seconds, 2),
            "auroc": round(auroc, 3),
            "auroc_per_gene": round(per_gene, 3),
            **extra,
        }

    record("oracle_p_de", test["p_de"], 0.0)  # the best any score can rank these labels
    started = time.perf_counter()
    direct = likelihood_p_yes(model, tokenizer, prompts, [[]] * len(prompts), args.batch_size)
    record("likelihood_direct", direct, time.perf_counter() - started)
    for k in args.k:
        settings = GenerationSettings(
            greedy=False, num_samples=k, max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size, seed=args.seed,
        )  # fmt: skip
        started = time.perf_counter()
        samples = generate_hf(model, tokenizer, conversations, settings, progress=False).samples
        sampling = time.perf_counter() - started
        read = [[parse_answer(text) for text in texts] for texts in samples]
        unreadable = float(np.mean([a is None for answers in read for a in answers]))
        record(f"vote_{k}", [p_yes(None, a, True) for a in read], sampling, unreadable=unreadable)
        started = time.perf_counter()
        forced = likelihood_p_yes(model, tokenizer, prompts, samples, args.batch_size)
        forward = time.perf_counter() - started
        record(
            f"likelihood_after_vote_{k}",
            forced,
            sampling + forward,
            forward_seconds=round(forward, 2),
        )

    summary = {
        "test_questions": len(test),
        "test_positives": int(label.sum()),
        "genes_with_both_classes": int(test.groupby("gene")["label"].nunique().eq(2).sum()),
        "warm_up_steps": args.steps,
        "warm_up_lr": args.lr,
        "warm_up_seconds": round(warm_up_seconds, 1),
        "threads": torch.get_num_threads(),
        "scores": results,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
