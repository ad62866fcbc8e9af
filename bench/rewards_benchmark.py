"""Speed of the rewards (a benchmark, not a test): prints a small table.

1. ``go_rouge`` against Google's ``rouge-score`` with ``use_stemmer=True`` (the authors' scorer),
   called once per (completion, gene) pair, on 10,000 completions (2,500 prompts x 4
   generations) about real genes: each gene's direct GO term names from the GO index of the data
   folder, each completion's ``<gene_info>`` mentioning, paraphrasing or ignoring them, or hostile
   (``bench/go_rouge_pairs.py``). Prints the time of each, how many pairs score exactly
   equal (all three F-measures, to the bit), and how many pairs stemming changes (against
   rouge-score without it).
2. All rewards of a variant (default ``TF+GO+MLP+EXP``) on one GRPO batch of 64 completions,
   with cold caches, median over repetitions; once without and once with ``go_likelihood``
   (the repo's tiny random Qwen2, hidden 32, 2 layers).

The data folder is ``$RBIO_DATA_DIR`` (default ``../shared/data``); part 1 needs it. Part 2 takes
GO term names from its ``go_ontology/go_terms.tsv.gz`` when present, otherwise from a synthetic
vocabulary.

    OMP_NUM_THREADS=1 .venv/bin/python bench/rewards_benchmark.py
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RBIO_DATA_DIR") or REPO.parent / "shared" / "data")
SOURCES = ("tf", "go", "mlp", "exp")
FILLER = [
    "the",
    "gene",
    "is",
    "expressed",
    "in",
    "many",
    "tissues",
    "and",
    "its",
    "product",
    "regulates",
    "signalling",
    "pathways",
    "through",
    "interactions",
    "with",
    "partner",
    "proteins",
    "in",
    "the",
    "cell",
]


def load_term_names(limit: int = 20000) -> tuple[list[str], str]:
    path = DATA_DIR / "go_ontology" / "go_terms.tsv.gz"
    if path.exists():
        with gzip.open(path, "rt") as handle:
            next(handle)
            names = [line.split("\t")[1] for line, _ in zip(handle, range(limit), strict=False)]
        return names, f"GO term names from {path.name}"
    rng = random.Random(0)
    words = [f"{w}{i}" for i, w in enumerate(FILLER * 10)]
    names = [" ".join(rng.sample(words, rng.randint(1, 5))) for _ in range(limit)]
    return names, "synthetic term names"


def make_rows(
    n_prompts: int,
    generations: int,
    names: list[str],
    seed: int,
    sources: tuple[str, ...] = SOURCES,
) -> dict[str, list]:
    """TRL-like columns: each prompt row repeated ``generations`` times, one completion each;
    prompts cycle through ``sources``; GO prompts get 0-20 term names per gene."""
    rng = random.Random(seed)
    columns: dict[str, list] = {
        key: []
        for key in (
            "completions",
            "source",
            "pert",
            "gene",
            "keywords",
            "classes",
            "class_confidences",
            "pert_go_terms",
            "gene_go_terms",
        )
    }
    for prompt in range(n_prompts):
        source = sources[prompt % len(sources)]
        pert, gene = f"GENE{rng.randint(1, 500)}", f"GENE{rng.randint(501, 1000)}"
        is_go = source == "go"
        pert_terms = rng.sample(names, rng.randint(0, 20)) if is_go else []
        gene_terms = rng.sample(names, rng.randint(0, 20)) if is_go else []
        p_yes = rng.random()
        confidences = "" if is_go else f"{1 - p_yes:.6g}|{p_yes:.6g}"
        for _ in range(generations):
            known = rng.sample(pert_terms + gene_terms, min(len(pert_terms + gene_terms), 4))
            words = rng.choices(FILLER, k=rng.randint(30, 120)) + " ".join(known).split()
            rng.shuffle(words)
            thinking = " ".join(rng.choices(FILLER, k=rng.randint(10, 60)) + [pert, gene])
            text = (
                f"<gene_info>{' '.join(words)}</gene_info>" if is_go else ""
            ) + f"<think>{thinking}</think><answer>{rng.choice(['yes', 'no', 'maybe'])}</answer>"
            columns["completions"].append([{"role": "assistant", "content": text}])
            columns["source"].append(source)
            columns["pert"].append(pert)
            columns["gene"].append(gene)
            columns["keywords"].append([pert, gene])
            columns["classes"].append("no|yes")
            columns["class_confidences"].append(confidences)
            columns["pert_go_terms"].append(pert_terms)
            columns["gene_go_terms"].append(gene_terms)
    return columns


def clear_caches() -> None:
    from rbio.rewards.parsing import PARSE_CACHE
    from rbio.rewards.rouge import cached_rouge_target, clear_stem_cache

    PARSE_CACHE.clear()
    cached_rouge_target.cache_clear()
    clear_stem_cache()


def real_go_rows(n_completions: int, generations: int = 4, seed: int = 1) -> dict[str, list]:
    """TRL-like GO rows about real genes: each prompt a (pert, gene) pair of annotated genes,
    each of its ``generations`` completions a ``<gene_info>`` of another kind about both."""
    from go_rouge_pairs import KINDS, gene_info_text, load_gene_terms

    gene_terms = load_gene_terms(DATA_DIR)
    rng = random.Random(seed)
    columns: dict[str, list] = {
        key: []
        for key in ("completions", "source", "pert", "gene", "pert_go_terms", "gene_go_terms")
    }
    for prompt in range(n_completions // generations):
        (pert, pert_terms), (gene, gene_terms_) = rng.sample(gene_terms, 2)
        for generation in range(generations):
            kind = KINDS[(prompt + generation) % len(KINDS)]
            _, other = gene_terms[rng.randrange(len(gene_terms))]
            info = " ".join(
                gene_info_text(kind, symbol, terms, other, rng)
                for symbol, terms in ((pert, pert_terms), (gene, gene_terms_))
            )
            text = f"<gene_info>{info}</gene_info><think>so</think><answer>yes</answer>"
            columns["completions"].append([{"role": "assistant", "content": text}])
            columns["source"].append("go")
            columns["pert"].append(pert)
            columns["gene"].append(gene)
            columns["pert_go_terms"].append(list(pert_terms))
            columns["gene_go_terms"].append(list(gene_terms_))
    return columns


def rouge_score_rewards(
    scorer: Any, gene_infos: list[str], rows: dict[str, list]
) -> tuple[list[float | None], list[tuple[float, ...]]]:
    """go_rouge computed with rouge-score: per completion the mean over genes, and every
    (completion, gene) pair's three F-measures."""
    rewards: list[float | None] = []
    pairs: list[tuple[float, ...]] = []
    for info, pert_terms, gene_terms in zip(
        gene_infos, rows["pert_go_terms"], rows["gene_go_terms"], strict=True
    ):
        per_gene = []
        for terms in (pert_terms, gene_terms):
            if terms:
                s = scorer.score(", ".join(terms), info)
                pairs.append((s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure))
                per_gene.append(sum(pairs[-1]) / 3)
        rewards.append(sum(per_gene) / len(per_gene) if per_gene else None)
    return rewards, pairs


def rouge_comparison(n_completions: int) -> dict[str, float]:
    from rouge_score import rouge_scorer

    from rbio.rewards.go import GoRougeReward
    from rbio.rewards.parsing import completion_text, parse_completion
    from rbio.rewards.rouge import rouge_f_measures

    rows = real_go_rows(n_completions)
    completions = rows.pop("completions")
    gene_infos = [parse_completion(completion_text(c)).section("gene_info") for c in completions]

    runs = []
    for _ in range(3):  # the machine is shared: take the median of three cold-cache runs
        clear_caches()
        start = time.perf_counter()
        ours = GoRougeReward()(completions, **rows)
        runs.append(time.perf_counter() - start)
    ours_seconds = statistics.median(runs)

    stemmed = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    stemmed.score("warm up", "the stemmer")  # nltk is imported by now; time the scoring only
    start = time.perf_counter()
    reference, reference_pairs = rouge_score_rewards(stemmed, gene_infos, rows)
    reference_seconds = time.perf_counter() - start

    if [r is None for r in ours] != [r is None for r in reference]:
        raise AssertionError("go_rouge and rouge-score disagree on which rows have terms")
    our_pairs = [
        rouge_f_measures(", ".join(terms), info)
        for info, pert_terms, gene_terms in zip(
            gene_infos, rows["pert_go_terms"], rows["gene_go_terms"], strict=True
        )
        for terms in (pert_terms, gene_terms)
        if terms
    ]
    unstemmed = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    _, unstemmed_pairs = rouge_score_rewards(unstemmed, gene_infos, rows)
    stemming_changes = [
        abs(sum(a) - sum(b)) / 3 for a, b in zip(reference_pairs, unstemmed_pairs, strict=True)
    ]
    return {
        "completions": len(completions),
        "pairs": len(reference_pairs),
        "equal_pairs": sum(a == b for a, b in zip(our_pairs, reference_pairs, strict=True)),
        "ours_s": ours_seconds,
        "rouge_score_s": reference_seconds,
        "speedup": reference_seconds / ours_seconds,
        "max_abs_diff": max(
            (abs(a - b) for a, b in zip(ours, reference, strict=True) if a is not None),
            default=0.0,
        ),
        "stemming_changes": sum(change > 1e-12 for change in stemming_changes),
        "stemming_max_change": max(stemming_changes, default=0.0),
    }


def time_batch(functions: list[Callable[..., Any]], batch: dict[str, list], repeats: int) -> float:
    """Median milliseconds to run every reward function on the batch, caches cleared each time."""
    completions = batch["completions"]
    columns = {k: v for k, v in batch.items() if k != "completions"}
    prompts = [[{"role": "user", "content": "q"}]] * len(completions)
    times = []
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        for function in functions:
            values = function(
                prompts=prompts,
                completions=completions,
                completion_ids=None,
                trainer_state=None,
                **columns,
            )
            assert len(values) == len(completions)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def tiny_policy() -> tuple[Any, Any]:
    from rbio.models import load_model_and_tokenizer
    from rbio.training.tiny_model import build_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="rewards-bench-")) / "tiny"
    corpus = ["TP53 is associated with: DNA binding, nucleus.", " ".join(FILLER)]
    build_tiny_model(folder, corpus, seed=0, hidden_size=32, num_layers=2, vocab_size=512)
    model, tokenizer = load_model_and_tokenizer(folder)
    return model.eval(), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="TF+GO+MLP+EXP")
    parser.add_argument("--completions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-likelihood", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from rbio.config_file import read_config
    from rbio.rewards.registry import build_reward_functions, get_reward

    names, names_from = load_term_names()
    print(f"# {names_from}; torch threads: {torch.get_num_threads()}")

    rouge = rouge_comparison(args.completions)
    print("\n## go_rouge vs rouge-score (use_stemmer=True), real GO terms")
    print(
        "| completions | (completion, gene) pairs | equal pairs | go_rouge s | rouge-score s "
        "| speed-up | max |diff| | pairs stemming changes (max change) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {rouge['completions']} | {rouge['pairs']} | {rouge['equal_pairs']} | "
        f"{rouge['ours_s']:.3f} | {rouge['rouge_score_s']:.3f} | {rouge['speedup']:.1f}x | "
        f"{rouge['max_abs_diff']:.1e} | {rouge['stemming_changes']} "
        f"({rouge['stemming_max_change']:.3f}) |"
    )

    variant = read_config(REPO / "config.yaml").variants[args.variant]
    functions, _ = build_reward_functions(variant)
    batch = make_rows(16, 4, names, seed=2)
    rows = [
        (
            "without go_likelihood",
            [f.__name__ for f in functions],
            time_batch(functions, batch, args.repeats),
        )
    ]
    if not args.skip_likelihood:
        model, tokenizer = tiny_policy()
        with_likelihood = [
            *functions,
            get_reward("go_likelihood", model=model, tokenizer=tokenizer),
        ]
        rows.append(
            (
                "with go_likelihood (tiny Qwen2)",
                [f.__name__ for f in with_likelihood],
                time_batch(with_likelihood, batch, args.repeats),
            )
        )
    print(
        f"\n## all rewards of {args.variant} on 64 completions (median of {args.repeats}, cold caches)"
    )
    print("| rewards | functions | ms per batch | budget 50 ms |")
    print("|---|---|---|---|")
    for label, function_names, milliseconds in rows:
        verdict = "ok" if milliseconds <= 50 else "OVER"
        print(f"| {label} | {', '.join(function_names)} | {milliseconds:.1f} | {verdict} |")


if __name__ == "__main__":
    main()
