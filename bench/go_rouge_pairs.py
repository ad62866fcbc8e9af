"""Real (GO terms, gene_info text) pairs for checking ``go_rouge`` against rouge-score.

Each gene's direct GO term names come from the GO index built from the offline copies in the data
folder (:func:`rbio.verifiers.go.index_from_edge_files`, what ``build_go_index`` runs), capped per
aspect and sorted as the prompt builder does (``max_terms_per_aspect``, 20 in the paper config).
Each gene's terms are paired with texts a policy might write in ``<gene_info>``:

- ``mention``: some of the term names verbatim in filler sentences;
- ``paraphrase``: the term names inflected ("binding" -> "binds", "activity" -> "activities",
  "regulation" -> "regulates"), reordered, hyphenated, in other cases: what stemming matches;
- ``hostile``: tags, Unicode that lower-cases oddly (Kelvin sign, dotted I, sharp s, full-width
  letters), tokens longer than the stem cache keeps, Porter's irregular words, digits, runs of
  punctuation, empty text, a term repeated hundreds of times;
- ``unrelated``: another gene's terms.

Used by ``bench/rewards_benchmark.py`` (>= 10k pairs) and ``tests/rewards/test_rouge.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path

KINDS: tuple[str, ...] = ("mention", "paraphrase", "hostile", "unrelated")
FILLER_TEXT = (
    "the gene is expressed in many tissues and its product takes part in signalling through "
    "interactions with partner proteins in the cell; it is known to be involved in"
)
FILLER = FILLER_TEXT.split()
# Words whose Porter stems are irregular or short, and separators rouge-score splits on.
HOSTILE_WORDS = (
    "dying", "lying", "skies", "news", "proceed", "exceeds", "generously", "ies", "sses", "ion",
    "ions", "was", "does", "a", "is", "\u212aelvin", "\u0130nterleukin", "stra\u00dfe",
    "\uff42\uff49\uff4e\uff44\uff49\uff4e\uff47", "caf\u00e9", "na\u0308ive", "p53\u2013mdm2",
    "ATP_binding", "x" * 80, "bindingbindingbindingbindingbindingbindingbindingbindingbinding",
    "12345", "3'-5'", "<think>", "</gene_info>", "<answer>yes</answer>", "...", "\n\n", "\t",
)  # fmt: skip


def load_gene_terms(
    data_dir: str | Path, aspects: Sequence[str] = ("C", "F", "P"), max_per_aspect: int = 20
) -> list[tuple[str, tuple[str, ...]]]:
    """(gene, direct GO term names of ``aspects``) for every annotated gene, like a GO prompt."""
    from rbio.verifiers import go

    root = Path(data_dir)
    direct, _ = go.index_from_edge_files(
        {aspect: root / go.LOCAL_FILES[aspect][0] for aspect in aspects},
        {aspect: root / go.LOCAL_NODES[aspect] for aspect in aspects},
        root / go.LOCAL_GENES[0],
        root / go.LOCAL_TERMS[0],
    )
    chosen = direct.sort_values(["gene", "aspect", "go_name"])
    chosen = chosen.groupby(["gene", "aspect"]).head(max_per_aspect)
    return [(gene, tuple(names)) for gene, names in chosen.groupby("gene")["go_name"]]


def inflect(word: str, rng: random.Random) -> str:
    """Another form of an English word, as a writer might use it ("binding" -> "binds")."""
    lower = word.lower()
    if lower.endswith("ing") and len(lower) > 5:
        return word[:-3] + rng.choice(("s", "ed", "er", ""))
    if lower.endswith("ity"):
        return word[:-1] + rng.choice(("ies", "ies", "ic"))
    if lower.endswith("ation"):
        return word[:-5] + rng.choice(("ates", "ated", "ating", "ator"))
    if lower.endswith("ion"):
        return word[:-3] + rng.choice(("es", "ed", "ing"))
    if lower.endswith("y") and len(lower) > 3:
        return word[:-1] + "ies"
    if lower.endswith("ss"):
        return word + "es"
    if lower.endswith("s") and len(lower) > 4:
        return word[:-1]
    if lower.endswith("ic"):
        return word + "ally"
    return word + rng.choice(("s", "ed", "ing", "al", "ness"))


def paraphrase(term: str, rng: random.Random) -> str:
    words = [inflect(w, rng) if rng.random() < 0.6 else w for w in term.split()]
    if rng.random() < 0.3 and "of" in words:  # "regulation of X" -> "X regulates"
        at = words.index("of")
        words = words[at + 1 :] + words[:at]
    if rng.random() < 0.3:
        return "-".join(words)
    text = " ".join(words)
    return rng.choice((text, text.upper(), text.capitalize()))


def _sentence(rng: random.Random, parts: Iterable[str]) -> str:
    words = list(rng.sample(FILLER, rng.randint(3, 12)))
    for part in parts:
        words.insert(rng.randint(0, len(words)), part)
    return " ".join(words) + rng.choice((".", ";", ",", "!", " -"))


def gene_info_text(
    kind: str, gene: str, terms: Sequence[str], other: Sequence[str], rng: random.Random
) -> str:
    """A ``<gene_info>`` text of one kind (see the module docstring) about ``gene``."""
    some = rng.sample(list(terms), rng.randint(1, len(terms))) if terms else []
    if kind == "mention":
        parts = [gene, *some]
    elif kind == "paraphrase":
        parts = [gene, *(paraphrase(term, rng) for term in some)]
    elif kind == "unrelated":
        parts = [gene, *rng.sample(list(other), min(len(other), rng.randint(1, 6)))]
    elif kind == "hostile":
        choice = rng.randrange(6)
        if choice == 0:
            return ""
        if choice == 1:
            return " ".join(rng.choices(HOSTILE_WORDS, k=rng.randint(1, 40)))
        if choice == 2:  # one term spammed
            return (some[0] + " ") * rng.randint(50, 400) if some else "!!!"
        if choice == 3:  # punctuation and whitespace only
            return "".join(rng.choices(",.;:-()[]/\\'\" \n\t", k=rng.randint(1, 50)))
        parts = [gene, *(paraphrase(t, rng) for t in some), *rng.choices(HOSTILE_WORDS, k=8)]
        if choice == 4:  # glued together without separators
            return "".join(parts)
    else:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    sentences = [_sentence(rng, parts[i : i + 3]) for i in range(0, len(parts), 3)]
    return " ".join(sentences)


def make_pairs(
    gene_terms: Sequence[tuple[str, tuple[str, ...]]], n: int, seed: int = 0
) -> list[tuple[str, tuple[str, ...], str, str]]:
    """``n`` (gene, its terms, kind, gene_info text) pairs, the kinds in turn."""
    rng = random.Random(seed)
    pairs = []
    for index in range(n):
        gene, terms = gene_terms[rng.randrange(len(gene_terms))]
        _, other = gene_terms[rng.randrange(len(gene_terms))]
        kind = KINDS[index % len(KINDS)]
        pairs.append((gene, terms, kind, gene_info_text(kind, gene, terms, other, rng)))
    return pairs
