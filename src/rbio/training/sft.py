"""Optional supervised fine-tuning before GRPO (config ``sft``; off in the paper configuration).

A cold start: the model first imitates completions in the rbio answer format, then GRPO refines
them. One job = one (variant, split). The SFT set is the variant's GRPO training set
(``rbio.training.mixture.build_training_set`` on the same prompt datasets), so it inherits the
split discipline: prompts come only from the split's training rows. Each prompt gets a target
completion built only from what that row's verifier may see:

* label-style rows (EXP, MLP, TF) answer the class whose verifier confidence
  (``class_confidences``) exceeds 0.5: the experimental label for EXP (one-hot), the MLP
  verifier's decision for MLP, the co-expression question's answer for TF; the reasoning names
  the two genes (and the cell line) the question is about;
* GO rows list each gene's GO term names (the ones the row carries, which the GO verifier scores)
  in ``<gene_info>``; the reasoning names the terms both genes share. Their answer is the
  experimental label where the variant also has a source whose verifier sees labels (EXP),
  otherwise whether the two genes share a term: the GO verifier knows no label.

TRL's ``SFTTrainer`` trains on (prompt, completion) pairs with the loss on the completion (the
assistant turn) only; off CUDA the same loss is computed on the completion positions alone
(``rbio.training.completion_loss``: TRL would project the whole prompt). The model folder is
written atomically like the GRPO stage's: safetensors weights, tokenizer, ``trainer_state.json``
(the loss and held-out curves) and ``training_summary.json``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rbio.config import SftConfig, Variant
from rbio.io import atomic_path, write_json
from rbio.rewards.parsing import is_go_source, string_list
from rbio.sources import SOURCES
from rbio.training.heldout import heldout_callbacks, heldout_curve
from rbio.training.mixture import build_training_set

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

SFT_COLUMNS = ("prompt", "completion")  # what SFTTrainer is given


@dataclass(frozen=True)
class SftJob:
    """What the train_sft rule passes: typed settings, the model to start from, the prompts."""

    variant: Variant
    split: str
    sft: SftConfig
    seed: int
    base_model: str  # the prepared base model folder
    prompt_dirs: dict[str, str]  # source -> its prompt dataset for this split
    out_dir: str
    validation: str = ""  # the split's validation rows (held-out answers; "" for none)
    heldout_max_new_tokens: int = 256


# ---------------------------------------------------------------------------------------------
# Targets


def verifier_says_yes(classes: str, confidences: str) -> bool:
    """Whether the row's verifier gives "yes" a confidence above 0.5 (``"no|yes"``, ``"p|q"``).

    >>> verifier_says_yes("no|yes", "0.3|0.7"), verifier_says_yes("no|yes", "1|0")
    (True, False)
    """
    by_class = dict(zip(classes.split("|"), map(float, confidences.split("|")), strict=True))
    return by_class["yes"] > 0.5


def _answer(yes: bool) -> str:
    return f"<answer>{'yes' if yes else 'no'}</answer>"


def label_target(row: Mapping[str, Any]) -> str:
    """EXP, MLP and TF rows: the reasoning names the question's genes, the answer is the verifier's.

    >>> label_target({"pert": "TP53", "gene": "MDM2", "cell_line": "K562",
    ...               "classes": "no|yes", "class_confidences": "0.2|0.8"})
    '<think>The question concerns TP53 and MDM2 in K562 cells.</think><answer>yes</answer>'
    """
    where = f" in {row['cell_line']} cells" if row["cell_line"] else ""
    think = f"The question concerns {row['pert']} and {row['gene']}{where}."
    yes = verifier_says_yes(row["classes"], row["class_confidences"])
    return f"<think>{think}</think>{_answer(yes)}"


def go_target(row: Mapping[str, Any], labels_visible: bool) -> str:
    """GO rows: each gene's GO terms, the terms they share, and an answer (module docstring).

    >>> row = {"pert": "A", "gene": "B", "label": 0, "negated": False,
    ...        "pert_go_terms": ["nucleus", "DNA binding"], "gene_go_terms": ["nucleus"]}
    >>> go_target(row, labels_visible=False)  # doctest: +NORMALIZE_WHITESPACE
    '<gene_info>A: nucleus; DNA binding. B: nucleus.</gene_info><think>A and B share the
    GO term(s) nucleus.</think><answer>yes</answer>'
    >>> go_target(row, labels_visible=True)[-27:]
    '</think><answer>no</answer>'
    """
    pert, gene = row["pert"], row["gene"]
    pert_terms = string_list(row["pert_go_terms"], "pert_go_terms")
    gene_terms = string_list(row["gene_go_terms"], "gene_go_terms")
    info = " ".join(
        f"{name}: {'; '.join(terms) if terms else 'no annotated GO terms'}."
        for name, terms in ((pert, pert_terms), (gene, gene_terms))
    )
    shared = [term for term in pert_terms if term in set(gene_terms)]
    if shared:
        think = f"{pert} and {gene} share the GO term(s) {'; '.join(shared)}."
    else:
        think = f"{pert} and {gene} share no annotated GO term."
    # The label is already flipped for negated questions; without it, a shared term suggests a
    # link, and a negated question asks the opposite.
    yes = int(row["label"]) == 1 if labels_visible else bool(shared) != bool(row["negated"])
    return f"<gene_info>{info}</gene_info><think>{think}</think>{_answer(yes)}"


def sft_target(row: Mapping[str, Any], labels_visible: bool) -> str:
    """The completion SFT teaches for one prompt row (module docstring); ``labels_visible``: the
    variant has a source whose verifier sees the experimental labels."""
    if is_go_source(row["source"]):
        return go_target(row, labels_visible)
    return label_target(row)


def variant_sees_labels(variant: Variant) -> bool:
    """Whether one of the variant's verifiers knows the training rows' experimental labels."""
    return any(SOURCES[source].sees_labels for source in variant.sources)


def sft_dataset(
    prompt_dirs: Mapping[str, str | Path], variant: Variant, seed: int
) -> tuple[Dataset, dict[str, Any]]:
    """The variant's GRPO training set (same mixture and seed) with a ``completion`` column of
    SFT targets (an assistant message); returns (dataset, mixture summary)."""
    dataset, mixture = build_training_set(
        {source: prompt_dirs[source] for source in variant.sources}, variant.sources, seed
    )
    visible = variant_sees_labels(variant)
    completions = [[{"role": "assistant", "content": sft_target(row, visible)}] for row in dataset]
    return dataset.add_column("completion", completions), mixture


# ---------------------------------------------------------------------------------------------
# Training


def sft_arguments(job: SftJob, output_dir: str, cuda: bool):
    """TRL ``SFTConfig``: config ``sft``'s TRL arguments as given, and what the pipeline needs."""
    from trl import SFTConfig

    return SFTConfig(
        **job.sft.trainer_arguments(),
        output_dir=output_dir,
        seed=job.seed,
        data_seed=job.seed,
        use_cpu=not cuda,
        # The loss on the assistant turn only: the prompt is given, not learned.
        completion_only_loss=True,
        save_strategy="no",  # a short stage: rerun rather than resume
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def sft_summary(job: SftJob, state, mixture: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """``training_summary.json``: what was trained on, the loss and held-out curves, the time;
    ``state`` is the trainer's."""
    return {
        "variant": job.variant.name,
        "split": job.split,
        "seed": job.seed,
        "steps": state.global_step,
        "training_set": mixture,
        "labels_visible": variant_sees_labels(job.variant),
        "loss_curve": [
            {"step": entry["step"], "loss": entry["loss"]}
            for entry in state.log_history
            if "loss" in entry
        ],
        "heldout_curve": heldout_curve(state.log_history),
        "seconds": round(elapsed, 2),
    }


def train_sft(job: SftJob) -> dict[str, Any]:
    """Fine-tune the base model on the variant's SFT set; write the model folder atomically."""
    import torch
    from trl import SFTTrainer

    from rbio.models import load_model_and_tokenizer
    from rbio.training.completion_loss import CompletionLossSFTTrainer

    cuda = torch.cuda.is_available()
    if job.sft["bf16"] and not cuda:
        raise RuntimeError(
            "config key 'sft.bf16' is true but this machine has no CUDA device; set sft.bf16: "
            "false for CPU runs (config/tiny.yaml does)"
        )
    # fp32 master weights, bf16 as autocast (SFTConfig's bf16): AdamW updates of bf16 weights at
    # these learning rates round away (as found for GRPO, rbio.training.grpo).
    model, tokenizer = load_model_and_tokenizer(job.base_model, dtype=torch.float32)
    dataset, mixture = sft_dataset(job.prompt_dirs, job.variant, job.seed)
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        # Off CUDA, TRL's loss projects the whole prompt through the LM head (completion_loss).
        trainer_class = SFTTrainer if cuda else CompletionLossSFTTrainer
        trainer = trainer_class(
            model=model,
            args=sft_arguments(job, scratch, cuda),
            train_dataset=dataset.select_columns(list(SFT_COLUMNS)),
            processing_class=tokenizer,
            callbacks=heldout_callbacks(
                job.validation,
                job.sft["heldout_every_steps"],
                job.heldout_max_new_tokens,
                job.seed,
                tokenizer,
            ),
        )
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
    summary = sft_summary(job, trainer.state, mixture, elapsed)
    with atomic_path(job.out_dir) as tmp:
        # Saved in the training precision: GRPO loads it as fp32 master weights again.
        trainer.model.to(torch.bfloat16 if job.sft["bf16"] else torch.float32)
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        trainer.state.save_to_json(str(tmp / "trainer_state.json"))
        write_json(tmp / "training_summary.json", summary)
    log.info(
        "SFT %s %s: %d steps in %.1f s", job.variant.name, job.split, summary["steps"], elapsed
    )
    return summary
