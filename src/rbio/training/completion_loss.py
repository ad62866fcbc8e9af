"""TRL's ``SFTTrainer`` with the completion-only loss computed on the completion positions only.

Why: TRL 1.16 computes SFT's loss through a fused LM head that projects only the positions with
a label when Triton runs it (CUDA, XPU); anywhere else it projects *every* position and masks
afterwards (``add_fused_lm_head``: a fixed tile shape avoids recompiling on accelerators like
Neuron). On CPU that costs the whole prompt: a tiny-preset pair is ~170 tokens of which ~20 are
the completion, and the LM head is nearly all of a tiny model's work, so SFT ran ~10x slower
than it needs to (``bench/sft_cpu_loss.py``). The loss here is the same number (mean negative
log-likelihood over the completion tokens, normalised like TRL's: by the batch's label count, or
by ``num_items_in_batch`` under gradient accumulation; a test checks equality with TRL's), from
the backbone's hidden states at the labelled positions only. TRL's extra per-token metrics
(entropy, token accuracy) are not logged on this path; the loss is.

Used for single-process runs off CUDA (``rbio.training.sft.train_sft``); on GPUs TRL's own path
runs unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from trl import SFTTrainer

IGNORED = -100  # the label of positions without a loss (prompt, padding), as in transformers


def completion_nll(model, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
    """Mean next-token NLL over the positions whose label is not ``IGNORED``."""
    labels = inputs["labels"][:, 1:]  # the token each position predicts
    scored = labels != IGNORED
    features = {key: value for key, value in inputs.items() if key != "labels"}
    hidden = model.base_model(**features).last_hidden_state[:, :-1]
    logits = model.get_output_embeddings()(hidden[scored]).float()
    total = F.cross_entropy(logits, labels[scored], reduction="sum")
    return total / (scored.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)


class CompletionLossSFTTrainer(SFTTrainer):
    """``SFTTrainer`` whose training loss is :func:`completion_nll` (module docstring)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise NotImplementedError("this trainer only trains: it returns the loss alone")
        return completion_nll(model, inputs, num_items_in_batch)
