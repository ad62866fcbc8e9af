"""Batched answer generation for the test questions of a split, and the evaluation of one model.

The authors' ``inference.py`` asks one question at a time (one ``generate`` call per question).
Here questions are rendered with the training prompt (``rbio.data.prompts.build_messages``),
sorted by length, left-padded and generated in batches; ``num_samples`` sampled answers per
question come from one ``generate`` call with ``num_return_sequences``. With config
``evaluation.engine: vllm`` vLLM generates instead (plain model folders; the released checkpoints,
shards loaded on top of the base model, always go through transformers).

What is scored (documented in the README's evaluation section), under each protocol of
``rbio.evaluation.metrics.PROTOCOLS``:
- the hard answer is the greedy answer when ``greedy`` is on (the authors' inference script),
  else the majority of the samples (a tie counts as "no");
- P(yes) ranks the rows for the AUROCs. With samples it is the share of "yes" among them,
  without samples the greedy answer as 1/0;
- ``conservative`` (lenient parse, columns ``answer``, ``p_yes``, ``predicted``, ``score``): an
  unreadable answer is a "no" everywhere: it stays in the denominator of the hard metrics, and
  an unreadable sample counts as "no" in P(yes) (the share is over *all* samples). The model did
  not claim differential expression, so a model that never answers scores exactly like the
  majority baseline (TPR 0, TNR 1, MCC 0, AUROC 0.5), never better; the rate is reported beside
  every table as metric ``unparseable`` (and ``unparseable_samples`` for samples);
- ``strict`` (the paper's bare yes/no, columns ``strict_*``): a row is kept when its hard answer
  is readable (greedy: the greedy answer; majority: at least one readable sample), P(yes) is the
  share of "yes" among the *readable* samples (the greedy answer as 1/0 when no sample is
  readable), and unkept rows are dropped from the metrics (``coverage``).

With ``likelihood_scoring`` on, a second continuous score comes beside the sampled share:
the model's own P(yes) after ``<answer>``, teacher-forced after each sampled trace and averaged
(``rbio.evaluation.likelihood``; columns ``p_yes_likelihood`` and ``score_likelihood``, the latter
flipped for a negated question). It reads no answer, so both protocols share it; the metrics
report ``auroc_likelihood`` and ``auroc_per_gene_likelihood`` from it. The hard answer is unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rbio.config import ConfigError, check_decoding
from rbio.data.prompts import DE_TEMPLATES, build_messages
from rbio.evaluation.likelihood import likelihood_p_yes, p_de
from rbio.evaluation.metrics import (
    HEADLINE_PROTOCOL,
    LIKELIHOOD_SCORE,
    PROTOCOLS,
    STRATUM_COLUMNS,
    metrics_table,
)
from rbio.evaluation.published import load_checkpoint_into
from rbio.io import write_json, write_parquet
from rbio.models import load_model_and_tokenizer, load_tokenizer
from rbio.progress import progress_bar
from rbio.rewards.parsing import parse_answer, parse_answer_strict

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]
Parser = Callable[[str], str | None]

PREDICTION_KEY_COLUMNS: tuple[str, ...] = ("cell_line", "pert", "gene", "label", *STRATUM_COLUMNS)
# Evaluation asks the paper's question (template 0 of rbio.data.prompts.DE_TEMPLATES).
EVALUATION_TEMPLATE = 0


class EvaluationInputError(ValueError):
    """Evaluation input that cannot be used; the message names the file, key or row."""


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings (config ``evaluation``)."""

    greedy: bool = True
    num_samples: int = 5
    temperature: float = 0.7
    max_new_tokens: int = 1024
    batch_size: int = 32
    seed: int = 42
    likelihood_scoring: bool = True  # P(yes) from next-token probabilities after <answer>

    def __post_init__(self) -> None:
        try:
            check_decoding(self.greedy, self.num_samples)
        except ConfigError as error:
            raise EvaluationInputError(str(error)) from None


@dataclass
class Completions:
    """Generated texts per question, in the order the questions were given."""

    greedy: list[str | None]
    samples: list[list[str]]


# --------------------------------------------------------------------------------------------
# Test questions
# --------------------------------------------------------------------------------------------


def read_test_rows(path: str | Path) -> pd.DataFrame:
    """A split's test rows (already capped by config splits.max_test_rows), checked."""
    test = pd.read_parquet(path)
    missing = [column for column in PREDICTION_KEY_COLUMNS if column not in test.columns]
    if missing:
        raise EvaluationInputError(f"{path}: missing column(s) {missing}")
    if test.empty:
        raise EvaluationInputError(f"{path}: no test rows")
    return test.reset_index(drop=True)


def question_messages(rows: pd.DataFrame, style: str) -> list[Conversation]:
    """The training prompt of each test row (base question, not negated), system prompt ``style``."""
    return [
        build_messages(
            pert=row.pert,
            gene=row.gene,
            cell_line=row.cell_line,
            style=style,
            template_id=EVALUATION_TEMPLATE,
        )
        for row in rows.itertuples(index=False)
    ]


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def render_prompts(tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Conversation]):
    return [
        tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        for conversation in conversations
    ]


def _generation_config(model, tokenizer, settings: GenerationSettings, sample: bool):
    from transformers import GenerationConfig

    # A fresh config: a hub model's generation_config.json (Qwen2.5: top_k 20, top_p 0.8,
    # repetition penalty 1.05) would otherwise silently change what "temperature T" means.
    eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=sample,
        temperature=settings.temperature if sample else None,
        top_k=0 if sample else None,
        top_p=1.0 if sample else None,
        num_return_sequences=settings.num_samples if sample else 1,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )


def _generate_batch(model, tokenizer, texts: list[str], config, seed: int) -> list[str]:
    import torch

    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    inputs = inputs.to(model.device)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(**inputs, generation_config=config)
    # Left padding: every prompt ends at the same position, the completion starts after it.
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def generate_hf(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    settings: GenerationSettings,
    progress: bool = True,
) -> Completions:
    """Greedy and sampled completions with Hugging Face ``generate``, batched, left-padded."""
    if tokenizer.padding_side != "left":
        raise EvaluationInputError("batched generation needs tokenizer.padding_side == 'left'")
    texts = render_prompts(tokenizer, conversations)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = np.argsort(lengths, kind="stable")[::-1]  # longest first: memory errors show early
    greedy: list[str | None] = [None] * len(texts)
    samples: list[list[str]] = [[] for _ in texts]
    greedy_config = _generation_config(model, tokenizer, settings, sample=False)
    sample_config = _generation_config(model, tokenizer, settings, sample=True)
    batches = [
        order[i : i + settings.batch_size] for i in range(0, len(order), settings.batch_size)
    ]
    model.eval()
    for number, batch in enumerate(progress_bar(batches, desc="generate", disable=not progress)):
        batch_texts = [texts[i] for i in batch]
        # One seed per batch: a rerun reproduces each batch whatever ran before it.
        seed = settings.seed + number
        if settings.greedy:
            for index, text in zip(
                batch,
                _generate_batch(model, tokenizer, batch_texts, greedy_config, seed),
                strict=True,
            ):
                greedy[index] = text
        if settings.num_samples:
            decoded = _generate_batch(model, tokenizer, batch_texts, sample_config, seed)
            for position, index in enumerate(batch):
                start = position * settings.num_samples
                samples[index] = decoded[start : start + settings.num_samples]
    return Completions(greedy=greedy, samples=samples)


class EngineUnavailableError(RuntimeError):
    """Config evaluation.engine names an engine this machine cannot run."""


def check_vllm_engine() -> None:
    """vLLM needs its package and a CUDA device: say which is missing and what to change."""
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None:
        raise EngineUnavailableError(
            "config key 'evaluation.engine' is vllm but the vllm package is not installed: "
            "install the project's `gpu` extra, or set evaluation.engine: hf"
        )
    if not torch.cuda.is_available():
        raise EngineUnavailableError(
            "config key 'evaluation.engine' is vllm but this machine has no CUDA device: "
            "set evaluation.engine: hf for CPU runs (config/tiny.yaml does)"
        )


def generate_vllm(
    model_dir: str | Path,
    conversations: Sequence[Conversation],
    settings: GenerationSettings,
) -> Completions:
    """The same completions with vLLM (GPU only; plain model folders, not base + shards)."""
    check_vllm_engine()
    from vllm import LLM, SamplingParams

    tokenizer = load_tokenizer(model_dir)
    texts = render_prompts(tokenizer, conversations)
    engine = LLM(model=str(model_dir), seed=settings.seed)
    greedy: list[str | None] = [None] * len(texts)
    samples: list[list[str]] = [[] for _ in texts]
    if settings.greedy:
        params = SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens)
        for index, output in enumerate(engine.generate(texts, params)):
            greedy[index] = output.outputs[0].text
    if settings.num_samples:
        params = per_question_sampling(settings, len(texts), SamplingParams)
        for index, output in enumerate(engine.generate(texts, params)):
            samples[index] = [choice.text for choice in output.outputs]
    return Completions(greedy=greedy, samples=samples)


def per_question_sampling(
    settings: GenerationSettings, questions: int, sampling_params: Callable[..., Any]
) -> list[Any]:
    """vLLM sampling parameters, one per question, each seeded ``settings.seed + index``.

    One shared seed would give every question the same random stream, so the k-th samples of
    all questions would be drawn alike (correlated errors across rows); a seed per question also
    keeps a question's samples independent of the batch it was generated in.
    """
    return [
        sampling_params(
            n=settings.num_samples,
            temperature=settings.temperature,
            top_p=1.0,
            top_k=-1,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed + index,
        )
        for index in range(questions)
    ]


def score_likelihood(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    completions: Completions,
    settings: GenerationSettings,
) -> np.ndarray:
    """Each question's P(yes) after ``<answer>``, averaged over its sampled traces (its greedy
    completion when there are no samples): one batched forward pass per batch of traces."""
    if settings.num_samples:
        traces = completions.samples
    else:
        traces = [[text] if text is not None else [] for text in completions.greedy]
    prompts = render_prompts(tokenizer, conversations)
    return likelihood_p_yes(model, tokenizer, prompts, traces, settings.batch_size)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def _parse_or_none(parse: Parser, text: str | None) -> str | None:
    return parse(text) if text is not None else None


def p_yes(
    greedy_answer: str | None, sample_answers: list[str | None], unreadable_is_no: bool
) -> float:
    """P(yes) of one question: share of "yes" among its samples (all samples when an unreadable
    one counts as "no", else the readable ones), else its greedy answer as 1/0; NaN when the
    answers read give no P(yes) (strict protocol only: such a row is not kept).

    >>> p_yes(None, ["yes", None, "no", "yes"], unreadable_is_no=True)
    0.5
    >>> p_yes(None, ["yes", None, "no", "yes"], unreadable_is_no=False)
    0.6666666666666666
    >>> p_yes(None, [], unreadable_is_no=True), p_yes("yes", [None], unreadable_is_no=False)
    (0.0, 1.0)
    """
    readable = [answer for answer in sample_answers if answer is not None]
    pool = sample_answers if unreadable_is_no else readable
    if pool:
        return sum(answer == "yes" for answer in pool) / len(pool)
    if greedy_answer is not None or unreadable_is_no:
        return float(greedy_answer == "yes")
    return math.nan


def hard_answer(
    greedy_answer: str | None, sample_answers: list[str | None], share_yes: float, greedy: bool
) -> str | None:
    """The scored answer: the greedy one, or the samples' majority by ``share_yes`` (a tie is
    "no"); None (unreadable) when no sample was read."""
    if greedy:
        return greedy_answer
    if all(answer is None for answer in sample_answers):
        return None
    return "yes" if share_yes > 0.5 else "no"


def _protocol_columns(
    greedy_answers: list[str | None],
    sample_answers: list[list[str | None]],
    greedy: bool,
    unreadable_is_no: bool,
) -> dict[str, list]:
    shares = [
        p_yes(g, answers, unreadable_is_no)
        for g, answers in zip(greedy_answers, sample_answers, strict=True)
    ]
    hard = [
        hard_answer(g, answers, share, greedy)
        for g, answers, share in zip(greedy_answers, sample_answers, shares, strict=True)
    ]
    return {
        "p_yes": shares,
        "answer": hard,
        "predicted": [int(answer == "yes") for answer in hard],
        "score": shares,
    }


def predictions_frame(
    rows: pd.DataFrame,
    completions: Completions,
    settings: GenerationSettings,
    parse: Parser = parse_answer,
    strict_parse: Parser = parse_answer_strict,
    likelihood: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per test question: completions, parsed answers, P(yes), the scored prediction,
    under both protocols (the conservative one with ``parse``, the strict one, columns
    ``strict_*``, with ``strict_parse``), and the likelihood P(yes) when ``likelihood`` is given
    (column ``p_yes_likelihood``; ``score_likelihood`` is its P(DE) for the question asked)."""
    frame = rows[list(PREDICTION_KEY_COLUMNS)].copy().reset_index(drop=True)
    frame["label"] = frame["label"].astype(int)
    frame["greedy_completion"] = completions.greedy
    frame["samples"] = completions.samples
    for prefix, reader, unreadable_is_no in (("", parse, True), ("strict_", strict_parse, False)):
        # A missing completion (None: not generated) is unreadable, whatever the parser is.
        greedy_answers = [_parse_or_none(reader, text) for text in completions.greedy]
        sample_answers = [
            [_parse_or_none(reader, text) for text in texts] for texts in completions.samples
        ]
        frame[f"{prefix}greedy_answer"] = greedy_answers
        frame[f"{prefix}sample_answers"] = sample_answers
        columns = _protocol_columns(
            greedy_answers, sample_answers, settings.greedy, unreadable_is_no
        )
        for name, values in columns.items():
            frame[f"{prefix}{name}"] = values
    frame["strict_kept"] = frame["strict_answer"].notna()
    n_parsed = [sum(a is not None for a in answers) for answers in frame["sample_answers"]]
    frame["n_parsed_samples"] = n_parsed
    frame["unparseable"] = frame["answer"].isna().to_numpy()
    n_samples = max(settings.num_samples, 1)
    frame["unparseable_samples"] = (
        [(len(a) - k) / n_samples for a, k in zip(frame["sample_answers"], n_parsed, strict=True)]
        if settings.num_samples
        else frame["unparseable"].astype(float)
    )
    if likelihood is not None:
        frame["p_yes_likelihood"] = np.asarray(likelihood, dtype=float)
        negated = [DE_TEMPLATES[EVALUATION_TEMPLATE].negated] * len(frame)
        frame[LIKELIHOOD_SCORE] = p_de(frame["p_yes_likelihood"].to_numpy(), negated)
    return frame


def protocol_rows(frame: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The predictions with ``predicted`` and ``score`` of one protocol (what metrics read)."""
    if protocol == HEADLINE_PROTOCOL:
        return frame
    return frame.assign(predicted=frame["strict_predicted"], score=frame["strict_score"])


def score_predictions(frame: pd.DataFrame, n_bootstrap: int, seed: int) -> pd.DataFrame:
    """Metrics of the predictions under every protocol, one table (column ``protocol``)."""
    tables = [
        metrics_table(
            protocol_rows(frame, protocol),
            n_bootstrap=n_bootstrap,
            seed=seed,
            rate_columns=("unparseable", "unparseable_samples"),
            what=f"predictions ({protocol})",
            protocol=protocol,
            kept_column="strict_kept" if protocol == "strict" else None,
        )
        for protocol in PROTOCOLS
    ]
    return pd.concat(tables, ignore_index=True)


# --------------------------------------------------------------------------------------------
# One evaluation (the evaluate_model rule)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything one ``evaluate_model`` job needs."""

    model_name: str  # variant name, "base", or "rbio1-<variant>"
    model_dir: str
    test_parquet: str
    split: str
    prompt_style: str
    settings: GenerationSettings
    n_bootstrap: int
    predictions_path: str
    metrics_path: str
    summary_path: str  # evaluation.json: what was evaluated, how, and how fast
    checkpoint_dir: str | None = None  # published shards loaded on top of model_dir
    engine: str = "hf"  # config evaluation.engine: "hf" | "vllm"


def load_for_evaluation(model_dir: str, checkpoint_dir: str | None):
    """Model + tokenizer on the best device; published shards loaded on top of the base model."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model_and_tokenizer(model_dir)
    if checkpoint_dir is not None:
        load_checkpoint_into(model, checkpoint_dir)
    return model.to(device), tokenizer


def _generate_and_score(
    request: EvaluationRequest, conversations: list[Conversation], use_vllm: bool
) -> tuple[Completions, np.ndarray | None, float]:
    """Completions, the likelihood P(yes) (None when off) and the likelihood pass's seconds.

    vLLM's generation is followed by a Hugging Face forward pass on the same model folder for
    the likelihood (vLLM's prompt log-probabilities would need one more engine call per trace and
    are not testable without a GPU); the engine is released first so both fit on one GPU.
    """
    if use_vllm:
        completions = generate_vllm(request.model_dir, conversations, request.settings)
        _release_gpu_memory()
        model = tokenizer = None
    else:
        model, tokenizer = load_for_evaluation(request.model_dir, request.checkpoint_dir)
        completions = generate_hf(model, tokenizer, conversations, request.settings)
    if not request.settings.likelihood_scoring:
        return completions, None, 0.0
    started = time.perf_counter()
    if model is None:
        model, tokenizer = load_for_evaluation(request.model_dir, request.checkpoint_dir)
    likelihood = score_likelihood(model, tokenizer, conversations, completions, request.settings)
    return completions, likelihood, time.perf_counter() - started


def _release_gpu_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_evaluation(request: EvaluationRequest) -> pd.DataFrame:
    """Generate, parse (the conservative protocol with the rewards' parser: one definition of
    "the model said yes"; the strict one with the paper's), score the likelihood P(yes) when on,
    and compute the metrics under both protocols; write predictions.parquet, metrics.parquet and
    evaluation.json atomically."""
    rows = read_test_rows(request.test_parquet)
    conversations = question_messages(rows, request.prompt_style)
    started = time.perf_counter()
    # Published shards are loaded into a transformers model: vLLM cannot load them.
    use_vllm = request.engine == "vllm" and request.checkpoint_dir is None
    completions, likelihood, likelihood_seconds = _generate_and_score(
        request, conversations, use_vllm
    )
    seconds = time.perf_counter() - started - likelihood_seconds
    log.info(
        "%s/%s/%s: %d questions in %.1f s (%s)",
        request.model_name, request.split, request.prompt_style, len(rows), seconds,
        "vllm" if use_vllm else "hf",
    )  # fmt: skip
    frame = predictions_frame(rows, completions, request.settings, likelihood=likelihood)
    metrics = score_predictions(frame, request.n_bootstrap, request.settings.seed)
    write_parquet(frame, request.predictions_path)
    write_parquet(metrics, request.metrics_path)
    sidecar = {
        **{k: v for k, v in asdict(request).items() if k not in ("settings", "summary_path")},
        "settings": asdict(request.settings),
        "questions": len(rows),
        "generation_seconds": seconds,
        "questions_per_second": len(rows) / seconds if seconds else math.inf,
        "likelihood_seconds": likelihood_seconds,
        "engine": "vllm" if use_vllm else "hf",
    }
    write_json(request.summary_path, sidecar)
    return metrics


def training_run_info(model_dir: str | Path) -> dict[str, Any]:
    """The training run's record (``run.json`` beside a trained model), {} for other models."""
    path = Path(model_dir) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}
