"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures with stemming, equal to Google's ``rouge-score`` and
much faster.

The reference is ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"],
use_stemmer=True)``, the scorer of the authors' GO reward: same tokenizer (lower-case, runs of
``[a-z0-9]``, nltk's Porter stemmer on tokens longer than 3 characters), same n-gram counting,
same precision/recall/F formulas evaluated in the same order, so the floats are identical. With
stemming "binds" and "binding" both become "bind", "activities" and "activity" "activ". The
speed comes from three things:

- the longest common subsequence is computed bit-parallel (Hyyrö's bit-vector algorithm on a
  Python integer: one addition, subtraction and a few bit operations per prediction token,
  instead of rouge-score's token-by-token dynamic-programming table);
- the reference side (a gene's GO term names, the same for every completion of a prompt group and
  for every prompt about that gene) is tokenised and indexed once and cached;
- each distinct token is stemmed once (a bounded cache), where rouge-score runs the Porter
  stemmer on every token of every call.

>>> scores = rouge_f_measures("DNA binding; apoptotic process", "it binds DNA")
>>> [round(s, 4) for s in scores]
[0.5714, 0.0, 0.2857]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

_TOKEN_RE = re.compile(r"[a-z0-9]+")
# rouge-score's final filter, applied to the stemmed tokens.
_VALID_TOKEN_RE = re.compile(r"^[a-z0-9]+$")
# rouge-score stems only tokens longer than this.
_UNSTEMMED_MAX_LENGTH = 3
# The stem cache holds at most this many tokens, each at most this long: English words and GO
# vocabulary fit many times over (~10 MB at most); a longer token (hostile or garbled text) is
# stemmed each time, so a completion of random strings cannot grow the cache past its bound.
STEM_CACHE_ENTRIES = 1 << 16
STEM_CACHE_TOKEN_LENGTH = 64
_stems: dict[str, str] = {}


@lru_cache(maxsize=1)
def porter_stemmer() -> Callable[[str], str]:
    """``nltk.stem.porter.PorterStemmer().stem``, rouge-score's stemmer (default NLTK_EXTENSIONS
    mode). Imported on first use: importing nltk takes seconds."""
    from nltk.stem import porter

    return porter.PorterStemmer().stem


def stem(token: str) -> str:
    """rouge-score's treatment of one ``[a-z0-9]+`` token: Porter stem if longer than 3
    characters, else the token; "" where the result would not be a valid token (rouge-score
    drops those). Cached per token.

    >>> [stem(t) for t in ("binds", "binding", "activities", "dna", "ion", "processes")]
    ['bind', 'bind', 'activ', 'dna', 'ion', 'process']
    """
    stemmed = _stems.get(token)
    if stemmed is not None:
        return stemmed
    stemmed = porter_stemmer()(token) if len(token) > _UNSTEMMED_MAX_LENGTH else token
    if not _VALID_TOKEN_RE.match(stemmed):
        stemmed = ""
    if len(token) <= STEM_CACHE_TOKEN_LENGTH:
        if len(_stems) >= STEM_CACHE_ENTRIES:
            _stems.clear()  # a bound, not an LRU: refilling costs one stem per token
        _stems[token] = stemmed
    return stemmed


def clear_stem_cache() -> None:
    _stems.clear()


def rouge_tokenize(text: str) -> list[str]:
    """rouge-score's default tokenizer with ``use_stemmer=True``.

    rouge-score lower-cases, replaces every run of characters outside ``[a-z0-9]`` with a space,
    splits on whitespace, stems the tokens longer than 3 characters and keeps the ``[a-z0-9]+``
    results; the runs of ``[a-z0-9]`` in the lower-cased text are exactly its tokens before
    stemming. ``str.lower`` is kept (not ``casefold``) because it is what rouge-score uses: the
    Kelvin sign lower-cases to "k", "ß" stays a separator.

    >>> rouge_tokenize("Wnt-signalling, ATP-binding activities!")
    ['wnt', 'signal', 'atp', 'bind', 'activ']
    """
    get = _stems.get
    return [
        stemmed
        for token in _TOKEN_RE.findall(text.lower())
        if (stemmed := get(token) or stem(token))
    ]


def _fmeasure(precision: float, recall: float) -> float:
    # rouge_score.scoring.fmeasure, same operation order for bit-identical results.
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _overlap(target: Counter, matches: list) -> int:
    # Clipped n-gram overlap; ``matches`` are the prediction's n-grams that occur in the target.
    overlap = 0
    for gram, count in Counter(matches).items():
        limit = target[gram]
        overlap += count if count < limit else limit
    return overlap


class RougeTarget:
    """A reference text indexed once for ROUGE against many predictions: its tokens, unigram and
    bigram counts, and each token's bit mask of positions (the bit-parallel LCS's table)."""

    __slots__ = ("tokens", "unigrams", "bigrams", "position_masks")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.unigrams: Counter[str] = Counter(tokens)
        self.bigrams: Counter[tuple[str, str]] = Counter(zip(tokens, tokens[1:], strict=False))
        masks: dict[str, int] = {}
        for position, token in enumerate(tokens):
            masks[token] = masks.get(token, 0) | (1 << position)
        self.position_masks = masks

    @classmethod
    def from_text(cls, text: str) -> RougeTarget:
        return cls(rouge_tokenize(text))


@lru_cache(maxsize=16384)
def cached_rouge_target(text: str) -> RougeTarget:
    """:meth:`RougeTarget.from_text`, cached: references (GO term lists) recur across
    completions of a prompt group and across prompts about the same gene."""
    return RougeTarget.from_text(text)


def lcs_length(target: RougeTarget, prediction_tokens: list[str]) -> int:
    """Length of the longest common subsequence of ``target.tokens`` and the prediction.

    Bit-vector algorithm (Allison & Dix 1986; Hyyrö 2004): bit i of ``v`` is 0 where the LCS
    row gains a step at target position i; the number of zero bits among the low ``m`` bits
    after the last prediction token is the LCS length.

    >>> lcs_length(RougeTarget.from_text("a b c d"), ["b", "d", "c"])
    2
    """
    m = len(target.tokens)
    if not m or not prediction_tokens:
        return 0
    full = (1 << m) - 1
    v = full
    masks = target.position_masks
    # A token absent from the target leaves v unchanged: only look at the ones present.
    for mask in [masks[token] for token in prediction_tokens if token in masks]:
        u = v & mask
        if u:
            v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


def rouge_scores(target: RougeTarget, prediction: list[str]) -> tuple[float, float, float]:
    """(ROUGE-1, ROUGE-2, ROUGE-L) F-measures of an indexed target and prediction tokens.

    Only the prediction's n-grams that occur in the target can overlap, so the prediction is
    filtered against the target's tables instead of being counted in full; the overlap counts
    (integers) and the totals are the same as rouge-score's, hence the same floats.
    """
    n_target, n_prediction = len(target.tokens), len(prediction)
    unigrams, bigrams = target.unigrams, target.bigrams
    overlap1 = _overlap(unigrams, [t for t in prediction if t in unigrams])
    overlap2 = _overlap(
        bigrams, [g for g in zip(prediction, prediction[1:], strict=False) if g in bigrams]
    )
    rouge1 = _fmeasure(overlap1 / max(n_prediction, 1), overlap1 / max(n_target, 1))
    rouge2 = _fmeasure(overlap2 / max(n_prediction - 1, 1), overlap2 / max(n_target - 1, 1))
    if not n_target or not n_prediction:
        rouge_l = 0.0
    else:
        common = lcs_length(target, prediction)
        rouge_l = _fmeasure(common / n_prediction, common / n_target)
    return rouge1, rouge2, rouge_l


def rouge_f_measures(target: str, prediction: str) -> tuple[float, float, float]:
    """(ROUGE-1, ROUGE-2, ROUGE-L) F-measures, equal to ``RougeScorer(["rouge1", "rouge2",
    "rougeL"], use_stemmer=True).score(target, prediction)[k].fmeasure``.

    >>> rouge_f_measures("", "anything")
    (0.0, 0.0, 0.0)
    """
    return rouge_scores(cached_rouge_target(target), rouge_tokenize(prediction))
