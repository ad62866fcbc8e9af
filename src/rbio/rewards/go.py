"""Gene Ontology rewards: how well what the model writes in ``<gene_info>`` matches GO.

GO prompts ask the model to write what it knows about the perturbed and the monitored gene in
``<gene_info>…</gene_info>`` before reasoning. Each row carries the two genes' direct GO term
names (``pert_go_terms``, ``gene_go_terms``); each reward scores the ``<gene_info>`` text against
each gene's terms that exist, and averages over those genes:

- ``go_keyword``: share of the gene's term names found verbatim (case-insensitive, whitespace
  runs collapsed) in the gene_info text; [0, 1];
- ``go_rouge``: mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures of the gene_info text against
  the gene's term names joined by ", ", with Porter stemming as the authors' rouge-score
  ``use_stemmer=True`` ("binds" matches "binding"); [0, 1] (the authors' code computed ROUGE-1
  twice by mistake; this uses the three);
- ``go_likelihood``: mean per-token log-likelihood, under the policy, of the sentence
  "{gene} is associated with: term1, term2, …" following the gene_info text; (-inf, 0].

How they add up to a GO row's reward is config ``verifiers.go.composition`` (the compositions are
declared in ``rbio.sources.GO_COMPOSITIONS``): ``mean`` weights ``go_keyword`` and ``go_rouge``
1 each; ``sum`` is the authors' early code, the per-gene terms summed over the two genes
(``go_keyword_sum``: [0, 2], ``go_rouge_sum`` adds ROUGE-1, -2 and -L: [0, 6],
``go_likelihood_sum``: (-inf, 0]; an unannotated gene adds 0); ``answer_ema`` is their later
code, ``go_answer_ema``: ``go_keyword + go_rouge`` of the row normalised online by
:class:`EmaSigmoid`, in [0, 1], weighted 2 as the ``answer`` reward.

A reward is None for a row from a non-GO source (by the ``source`` column), and for a row where
neither gene has terms: those genes are *unannotated* (unknown symbols, or no annotation in the
source's aspects; a missing term list, None or NaN, is no terms). Each reward object counts them
in ``unannotated`` (per completion, so a prompt counts ``num_generations`` times) and, under TRL,
logs the batch share of GO rows without terms as ``<name>/unannotated_share`` through the
trainer's ``log_metric`` hook. A completion that is None is the empty text: it scores 0 where the
reward applies.

>>> reward = GoKeywordReward()
>>> reward(["<gene_info>TP53 does DNA binding and apoptosis.</gene_info><think>x</think>"],
...        pert=["TP53"], gene=["XYZ1"], pert_go_terms=[["DNA binding", "nucleus"]],
...        gene_go_terms=[[]], source=["go"])
[0.5]
>>> reward.unannotated.genes
Counter({'XYZ1': 1})
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rbio.rewards.parsing import (
    column,
    completion_text,
    is_go_source,
    is_missing,
    optional_column,
    parse_completion,
    string_list,
)
from rbio.rewards.rouge import cached_rouge_target, rouge_scores, rouge_tokenize

DEFAULT_LIKELIHOOD_TEMPLATE = "{gene} is associated with: {terms}."


@dataclass
class UnannotatedGenes:
    """Counts of GO-row genes without terms; ``rows``: completions where neither gene had any."""

    rows: int = 0
    genes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class GeneJob:
    """One (completion, gene) pair to score."""

    row: int
    symbol: str
    terms: tuple[str, ...]
    gene_info: str


class GoReward:
    """Shared row handling of the GO rewards; subclasses score (gene_info text, gene terms).

    A row's score is the mean of its annotated genes' scores, or with ``over_genes = "sum"``
    their sum (an unannotated gene adds 0); None where neither gene is annotated (TRL sums the
    weighted rewards ignoring None, so in the total that is 0 too).
    """

    __name__ = "go"
    over_genes = "mean"  # or "sum"

    def __init__(self) -> None:
        self.unannotated = UnannotatedGenes()

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        pert_terms = column(kwargs, "pert_go_terms", n, self.__name__)
        gene_terms = column(kwargs, "gene_go_terms", n, self.__name__)
        sources = optional_column(kwargs, "source", n)
        perts = optional_column(kwargs, "pert", n)
        genes = optional_column(kwargs, "gene", n)

        jobs: list[GeneJob] = []
        applies = [False] * n
        go_rows = rows_without_terms = 0
        for row in range(n):
            if sources[row] is not None and not is_go_source(sources[row]):
                continue
            go_rows += 1
            gene_info: str | None = None
            for symbol, terms, name in (
                (perts[row], pert_terms[row], "pert_go_terms"),
                (genes[row], gene_terms[row], "gene_go_terms"),
            ):
                names = string_list(terms, name, row)
                label = "<unknown>" if is_missing(symbol) or not symbol else str(symbol)
                if not names:
                    self.unannotated.genes[label] += 1
                    continue
                if gene_info is None:
                    gene_info = parse_completion(completion_text(completions[row])).section(
                        "gene_info"
                    )
                jobs.append(GeneJob(row, label, names, gene_info))
                applies[row] = True
            if not applies[row]:
                rows_without_terms += 1
        self.unannotated.rows += rows_without_terms
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and go_rows:
            log_metric(f"{self.__name__}/unannotated_share", rows_without_terms / go_rows)

        sums = [0.0] * n
        counts = [0] * n
        for job, score in zip(jobs, self.score_jobs(jobs), strict=True):
            if score is not None:
                sums[job.row] += score
                counts[job.row] += 1
        if self.over_genes == "sum":
            return [sums[row] if counts[row] else None for row in range(n)]
        return [sums[row] / counts[row] if counts[row] else None for row in range(n)]

    def score_jobs(self, jobs: list[GeneJob]) -> list[float | None]:
        return [self.score_gene(job.gene_info, job.terms) for job in jobs]

    def score_gene(self, gene_info: str, terms: tuple[str, ...]) -> float | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


@lru_cache(maxsize=65536)
def _normalised_terms(terms: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(term for t in terms if (term := _normalise(t))))


class GoKeywordReward(GoReward):
    """Share of each gene's GO term names found verbatim in ``<gene_info>``, averaged over genes.

    >>> GoKeywordReward()(["<gene_info>Located in the NUCLEUS.</gene_info>"],
    ...                   pert_go_terms=[["nucleus", "cytosol"]], gene_go_terms=[["nucleus"]])
    [0.75]
    """

    __name__ = "go_keyword"

    def score_gene(self, gene_info: str, terms: tuple[str, ...]) -> float | None:
        wanted = _normalised_terms(terms)
        if not wanted:
            return None
        text = _normalise(gene_info)
        return sum(term in text for term in wanted) / len(wanted)


class GoRougeReward(GoReward):
    """Mean of ROUGE-1/2/L F-measures of ``<gene_info>`` against each gene's joined GO term
    names, averaged over genes; equal to rouge-score's with ``use_stemmer=True`` (see
    :mod:`rbio.rewards.rouge`).

    >>> round(GoRougeReward()(["<gene_info>DNA repair</gene_info>"],
    ...                       pert_go_terms=[["DNA repair"]], gene_go_terms=[[]])[0], 6)
    1.0
    >>> round(GoRougeReward()(["<gene_info>It binds DNA.</gene_info>"],
    ...                       pert_go_terms=[["DNA binding"]], gene_go_terms=[[]])[0], 6)
    0.4
    """

    __name__ = "go_rouge"

    def score_jobs(self, jobs: list[GeneJob]) -> list[float | None]:
        # The two genes of a row share one gene_info text: tokenise it once per row.
        predictions: dict[int, list[str]] = {}
        scores: list[float | None] = []
        for job in jobs:
            prediction = predictions.get(job.row)
            if prediction is None:
                prediction = predictions[job.row] = rouge_tokenize(job.gene_info)
            reference = cached_rouge_target(", ".join(job.terms))
            scores.append(self.combine_flavours(rouge_scores(reference, prediction)))
        return scores

    def combine_flavours(self, scores: Sequence[float]) -> float:
        """One gene's score from its ROUGE-1, -2 and -L F-measures: their mean."""
        return sum(scores) / 3.0


class GoKeywordSumReward(GoKeywordReward):
    """``go_keyword`` summed over the two genes (the authors' early composition); [0, 2].

    >>> GoKeywordSumReward()(["<gene_info>Located in the NUCLEUS.</gene_info>"],
    ...                      pert_go_terms=[["nucleus", "cytosol"]], gene_go_terms=[["nucleus"]])
    [1.5]
    """

    __name__ = "go_keyword_sum"
    over_genes = "sum"


class GoRougeSumReward(GoRougeReward):
    """ROUGE-1 + ROUGE-2 + ROUGE-L of each gene, summed over the two genes (the authors' early
    composition); [0, 6].

    >>> GoRougeSumReward()(["<gene_info>DNA repair</gene_info>"],
    ...                    pert_go_terms=[["DNA repair"]], gene_go_terms=[["DNA repair"]])
    [6.0]
    """

    __name__ = "go_rouge_sum"
    over_genes = "sum"

    def combine_flavours(self, scores: Sequence[float]) -> float:
        return float(sum(scores))


class GoLikelihoodReward(GoReward):
    """Mean per-token log-likelihood, under ``model``, of a sentence listing a gene's GO terms.

    For each gene with terms the sentence ``template.format(gene=symbol, terms="t1, t2, …")`` is
    scored after the completion's ``<gene_info>`` text (its last ``max_context_tokens`` tokens),
    so completions that wrote more relevant gene knowledge make the terms more likely and the
    reward differs within a GRPO group; with ``condition_on_gene_info=False`` it only measures
    what the policy already knows, the same for all completions of a prompt. Values are <= 0.
    Runs under ``torch.no_grad`` in eval mode and restores the model's mode afterwards.

    Under DeepSpeed ZeRO-3 every rank must run the same forward passes; ranks whose batches hold
    different numbers of GO jobs would wait on each other, so use it with ZeRO-2 or one process.

    Example with a random two-layer Qwen2 and a byte-level tokenizer trained on the spot:

    >>> import torch
    >>> from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    >>> from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    >>> backend = Tokenizer(models.BPE())
    >>> backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    >>> backend.train_from_iterator(["TP53 binds DNA"], trainers.BpeTrainer(
    ...     vocab_size=300, special_tokens=["<pad>"], show_progress=False,
    ...     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>")
    >>> _ = torch.manual_seed(0)
    >>> model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=32,
    ...     intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    ...     num_key_value_heads=2))
    >>> reward = GoLikelihoodReward(model, tokenizer)
    >>> scores = reward(["<gene_info>TP53 binds DNA.</gene_info>", "no gene info"],
    ...                 pert=["TP53", "TP53"], gene=["MDM2", "MDM2"],
    ...                 pert_go_terms=[["DNA binding"], []], gene_go_terms=[[], []])
    >>> scores[0] < 0, scores[1]
    (True, None)
    """

    __name__ = "go_likelihood"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        template: str = DEFAULT_LIKELIHOOD_TEMPLATE,
        condition_on_gene_info: bool = True,
        batch_size: int = 8,
        max_context_tokens: int = 384,
        max_target_tokens: int = 256,
    ) -> None:
        super().__init__()
        if model is None or tokenizer is None:
            raise ValueError("reward 'go_likelihood' needs the policy model and its tokenizer")
        if "{terms}" not in template:
            raise ValueError(f"go_likelihood template {template!r} must contain '{{terms}}'")
        if batch_size < 1 or max_target_tokens < 1 or max_context_tokens < 0:
            raise ValueError("go_likelihood: batch_size and max_target_tokens must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.condition_on_gene_info = condition_on_gene_info
        self.batch_size = batch_size
        self.max_context_tokens = max_context_tokens
        self.max_target_tokens = max_target_tokens

    def sentence(self, symbol: str, terms: tuple[str, ...]) -> str:
        gene = symbol if symbol != "<unknown>" else "This gene"
        return self.template.format(gene=gene, terms=", ".join(terms))

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def score_jobs(self, jobs: list[GeneJob]) -> list[float | None]:
        if not jobs:
            return []
        import torch

        pairs: list[tuple[list[int], list[int]]] = []
        for job in jobs:
            context: list[int] = []
            if self.condition_on_gene_info and job.gene_info.strip() and self.max_context_tokens:
                context = self._encode(job.gene_info.strip() + "\n")[-self.max_context_tokens :]
            target = self._encode(self.sentence(job.symbol, job.terms))[: self.max_target_tokens]
            pairs.append((context, target))

        # Batches of similar lengths waste little on padding; scores go back in job order.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        scores: list[float | None] = [None] * len(pairs)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(order), self.batch_size):
                    chunk = order[start : start + self.batch_size]
                    batch_scores = self._score_batch([pairs[i] for i in chunk])
                    for index, score in zip(chunk, batch_scores, strict=True):
                        scores[index] = score
        finally:
            self.model.train(was_training)
        return scores

    def _score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[float | None]:
        import torch

        device = next(self.model.parameters()).device
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id or 0
        sequences = [context + target for context, target in pairs]
        length = max(len(sequence) for sequence in sequences)
        if length < 2:
            return [None] * len(pairs)  # nothing to predict a token from
        # Left padding puts every target at the end, so only the last `keep` positions' logits
        # are needed (the vocabulary of a real model makes full logits costly).
        input_ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
        attention = torch.zeros((len(pairs), length), dtype=torch.long)
        for index, sequence in enumerate(sequences):
            if sequence:
                input_ids[index, length - len(sequence) :] = torch.tensor(sequence)
                attention[index, length - len(sequence) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        keep = min(max(len(target) for _, target in pairs) + 1, length)
        inputs = {
            "input_ids": input_ids.to(device),
            "attention_mask": attention.to(device),
            "position_ids": positions.to(device),
        }
        try:
            logits = self.model(**inputs, logits_to_keep=keep).logits
        except TypeError:  # models without logits_to_keep
            logits = self.model(**inputs).logits
        logits = logits[:, -keep:, :].float()
        predicted = input_ids[:, length - keep + 1 :].to(logits.device)
        log_probs = torch.log_softmax(logits[:, :-1, :], dim=-1)
        token_log_probs = log_probs.gather(-1, predicted.unsqueeze(-1)).squeeze(-1).cpu()

        scores: list[float | None] = []
        for index, (context, target) in enumerate(pairs):
            total = len(context) + len(target)
            # Scored positions q (absolute): inside the target and with a real token before q.
            first = max(length - len(target), length - total + 1)
            offset = length - keep + 1  # absolute position of token_log_probs[:, 0]
            if first > length - 1:
                scores.append(None)
                continue
            values = token_log_probs[index, first - offset :]
            scores.append(float(values.mean()))
        return scores

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={type(self.model).__name__}, template={self.template!r}, "
            f"condition_on_gene_info={self.condition_on_gene_info})"
        )


class GoLikelihoodSumReward(GoLikelihoodReward):
    """``go_likelihood`` summed over the two genes (the authors' early composition); <= 0."""

    __name__ = "go_likelihood_sum"
    over_genes = "sum"


# Added to the EMA variance before its square root: a batch of equal scores normalises to 0.5.
EMA_VARIANCE_FLOOR = 1e-8


@dataclass
class EmaSigmoid:
    """Online normalisation of scores to [0, 1]: ``sigmoid((x - mean) / sqrt(variance + 1e-8))``
    with an exponential moving mean and variance, updated once per call (one batch). Meant for
    bounded scores (the GO score is in [0, 2]).

    The authors' later code normalised the GO score "with an exponential moving average (alpha
    0.001) and a sigmoid"; the exact update is not known, so this one is chosen and fixed. For a
    call with the non-None values ``x_1..x_k`` (None stays None and updates nothing), ``m`` their
    mean:

    - the first call sets ``mean = m`` and ``variance = mean((x_i - m)^2)`` (starting from 0 and
      1 instead, alpha 0.001 would need thousands of steps to reach the scores' scale);
    - later calls set ``mean = (1 - alpha) * mean + alpha * m`` and then
      ``variance = (1 - alpha) * variance + alpha * mean((x_i - mean)^2)`` (about the new mean);
    - then every value of the call is normalised with the updated statistics.

    >>> normalise = EmaSigmoid(alpha=0.5)
    >>> [round(v, 4) for v in normalise([0.0, 2.0, None])[:2]], normalise.mean, normalise.variance
    ([0.2689, 0.7311], 1.0, 1.0)
    """

    alpha: float = 0.001
    mean: float | None = None
    variance: float = 0.0

    def __call__(self, values: Sequence[float | None]) -> list[float | None]:
        present = [float(v) for v in values if v is not None]
        if present:
            self.update(present)
        if self.mean is None:  # nothing seen yet: every value is None
            return [None] * len(values)
        scale = math.sqrt(self.variance + EMA_VARIANCE_FLOOR)
        return [None if v is None else _sigmoid((v - self.mean) / scale) for v in values]

    def update(self, batch: Sequence[float]) -> None:
        batch_mean = math.fsum(batch) / len(batch)
        if self.mean is None:
            self.mean = batch_mean
            self.variance = math.fsum((v - batch_mean) ** 2 for v in batch) / len(batch)
            return
        self.mean = (1.0 - self.alpha) * self.mean + self.alpha * batch_mean
        spread = math.fsum((v - self.mean) ** 2 for v in batch) / len(batch)
        self.variance = (1.0 - self.alpha) * self.variance + self.alpha * spread


def _sigmoid(z: float) -> float:
    # Two branches so that exp never overflows: the result is in [0, 1] for any finite z.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class GoAnswerEmaReward(GoReward):
    """The authors' later GO reward: the row's ``go_keyword + go_rouge`` (each averaged over its
    annotated genes; [0, 2]) normalised online by :class:`EmaSigmoid`; [0, 1], None where
    ``go_keyword`` is. Weighted 2 as the ``answer`` reward of label sources.

    The mean over genes rather than the early code's sum: a row with one annotated gene is not
    worth half of one with two, so the moving statistics follow how well the model writes, not how
    many of a pair's genes GO annotates. The statistics live in this object: one per training
    process (ranks of a multi-GPU run keep their own) and they start afresh when a run resumes.

    Scores 2 and 0 in a first batch: mean 1, variance 1, so sigmoid(1) and sigmoid(-1):

    >>> reward = GoAnswerEmaReward()
    >>> scores = reward(["<gene_info>nucleus</gene_info>", "<gene_info>no idea</gene_info>"],
    ...                 pert_go_terms=[["nucleus"], ["nucleus"]], gene_go_terms=[[], []])
    >>> [round(score, 4) for score in scores]
    [0.7311, 0.2689]
    """

    __name__ = "go_answer_ema"

    def __init__(self, alpha: float = 0.001) -> None:
        super().__init__()
        self.keyword = GoKeywordReward()
        self.rouge = GoRougeReward()
        self.normalise = EmaSigmoid(alpha=alpha)

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return self.normalise(super().__call__(completions, **kwargs))

    def score_jobs(self, jobs: list[GeneJob]) -> list[float | None]:
        keyword = self.keyword.score_jobs(jobs)
        rouge = self.rouge.score_jobs(jobs)
        return [
            None if k is None or r is None else k + r for k, r in zip(keyword, rouge, strict=True)
        ]

    def __repr__(self) -> str:
        return f"GoAnswerEmaReward(alpha={self.normalise.alpha})"
