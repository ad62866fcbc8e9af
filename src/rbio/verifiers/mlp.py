"""MLP verifier: P(knockdown of pert differentially expresses gene), trained on one split.

rbio's shape: concat(emb(pert), emb(gene)) -> Linear -> ReLU -> Linear -> sigmoid, BCE, Adam,
balanced batches, seeded. Beside the two embeddings the input carries a few *pair features*
computed strictly from the split's training rows (for ``loco_<line>`` the other lines only):

- smoothed DE rate of the gene and of the perturbation among the training rows (logit);
- smoothed DE rate of the same (pert, gene) pair in the training rows, and whether it occurs;
- gene-neighbour score ("item" collaborative filtering): how similar ``gene`` is, by co-DE across
  training perturbations, to the genes this perturbation differentially expresses in training.

Pert-neighbour rates (DE rate of ``gene`` under perturbations similar to ``pert`` by training
profile or by embedding) were tried and dropped: on leave-one-cell-line-out they lowered the
per-gene AUROC (bench/mlp_verifier_loco.py).

A gene-frequency prior alone ranks genes well (global AUROC ~0.9) but cannot rank perturbations
for one gene (PerturbQA's per-gene AUROC 0.5); the neighbour scores are what carry
perturbation-specific signal across cell lines.

Features of the *training* rows are computed out-of-fold, so a training row never sees its own
label: with two or more training lines, each line's rows get features from the *other* training
lines only — exactly the situation of a held-out line's test rows (this transferred clearly better
than random folds); with one training line, folds of (cell line, perturbation) groups. Test-row
features use all training rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from rbio.io import write_json, write_parquet, write_safetensors
from rbio.verifiers.embeddings import GeneEmbedding

log = logging.getLogger(__name__)

FEATURE_NAMES: tuple[str, ...] = (
    "gene_rate_logit",
    "pert_rate_logit",
    "pert_seen",
    "pair_rate_logit",
    "pair_seen",
    "gene_neighbour_score",
    "pert_missing_embedding",
    "gene_missing_embedding",
)
SCORE_COLUMNS: tuple[str, ...] = ("cell_line", "pert", "gene", "score")
REQUIRED_COLUMNS: tuple[str, ...] = ("cell_line", "pert", "gene", "label")

# Pseudo-counts pulling sparse rates toward the training prior.
RATE_SMOOTHING = 5.0
EMBEDDING_NEIGHBOURS = 20
OUT_OF_FOLD_FOLDS = 5
CHUNK_ROWS = 8192
N_PAIR_FEATURES = 6  # FEATURE_NAMES minus the two missing-embedding flags


@dataclass(frozen=True)
class MlpSettings:
    hidden: int = 64
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 42
    threshold: float = 0.5
    embedding_dropout: float = 0.5


def _check(frame: pd.DataFrame, what: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(frame.columns)}")
    bad = ~frame["label"].isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{what}: label not 0/1 at row {row}: {frame.iloc[row].to_dict()}")


# --------------------------------------------------------------------------------------------
# Pair features from reference (training) rows
# --------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def pair_features(reference: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """FEATURE_NAMES[:6] for ``rows``, computed from the labelled ``reference`` rows only."""
    prior = float(reference["label"].mean())
    k = RATE_SMOOTHING
    perts = pd.Index(sorted(set(reference["pert"]) | set(rows["pert"])))
    genes = pd.Index(sorted(set(reference["gene"]) | set(rows["gene"])))
    ref_p = perts.get_indexer(reference["pert"])
    ref_g = genes.get_indexer(reference["gene"])
    labels = reference["label"].to_numpy(np.float32)

    positives = np.zeros((len(perts), len(genes)), dtype=np.float32)
    counts = np.zeros_like(positives)
    np.add.at(positives, (ref_p, ref_g), labels)
    np.add.at(counts, (ref_p, ref_g), 1.0)
    observed_de = (positives > 0).astype(np.float32)

    gene_pos, gene_n = positives.sum(0), counts.sum(0)
    pert_pos, pert_n = positives.sum(1), counts.sum(1)
    gene_rate = (gene_pos + k * prior) / (gene_n + k)
    pert_rate = (pert_pos + k * prior) / (pert_n + k)

    # Gene-gene similarity by co-DE across perturbations; strong perturbations (hundreds of DE
    # genes) make everything co-DE, so each perturbation's column is weighted 1/sqrt(#DE).
    pert_weight = 1.0 / np.sqrt(1.0 + observed_de.sum(1))
    gene_vectors = _unit_rows((observed_de * pert_weight[:, None]).T)  # genes x perts
    pert_profile_sum = observed_de @ gene_vectors  # perts x perts: sum of DE genes' vectors
    de_per_pert = observed_de.sum(1)

    row_p = perts.get_indexer(rows["pert"])
    row_g = genes.get_indexer(rows["gene"])
    out = np.zeros((len(rows), N_PAIR_FEATURES), dtype=np.float32)
    out[:, 0] = _logit(gene_rate[row_g])
    out[:, 1] = _logit(pert_rate[row_p])
    out[:, 2] = pert_n[row_p] > 0
    pair_pos, pair_n = positives[row_p, row_g], counts[row_p, row_g]
    out[:, 3] = _logit((pair_pos + gene_rate[row_g]) / (pair_n + 1.0))
    out[:, 4] = pair_n > 0
    for start in range(0, len(rows), CHUNK_ROWS):
        p = row_p[start : start + CHUNK_ROWS]
        g = row_g[start : start + CHUNK_ROWS]
        gv = gene_vectors[g]
        # Leave the pair itself out of its own neighbour score (that is the pair-rate feature).
        raw = np.einsum("ij,ij->i", pert_profile_sum[p], gv) - observed_de[p, g] * np.einsum(
            "ij,ij->i", gv, gv
        )
        out[start : start + CHUNK_ROWS, 5] = np.log1p(100 * raw / (de_per_pert[p] + 1.0))
    return out


def _fold_of(cell_line: pd.Series, pert: pd.Series, seed: int, folds: int) -> np.ndarray:
    """Stable fold per (cell line, perturbation), independent of row order."""
    keys = (cell_line.astype(str) + "\t" + pert.astype(str)).to_numpy()
    unique = {
        key: int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little") % folds
        for key in set(keys)
    }
    return np.array([unique[key] for key in keys], dtype=np.int64)


def out_of_fold_features(
    train: pd.DataFrame, seed: int, folds: int = OUT_OF_FOLD_FOLDS
) -> np.ndarray:
    """Pair features of the training rows, each computed without the row's own label."""
    lines = train["cell_line"].to_numpy()
    if len(set(lines)) >= 2:
        fold = pd.Index(sorted(set(lines))).get_indexer(lines)
    else:
        fold = _fold_of(train["cell_line"], train["pert"], seed, folds)
    features = np.zeros((len(train), N_PAIR_FEATURES), dtype=np.float32)
    for k in np.unique(fold):
        held = fold == k
        features[held] = pair_features(train[~held], train[held])
    return features


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class PairMLP(nn.Module):
    """Linear(2d + features -> hidden) -> ReLU -> Linear(hidden -> 1), logits out."""

    def __init__(
        self,
        embedding_dim: int,
        n_features: int,
        hidden: int,
        onehot: bool,
        embedding_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.onehot = onehot
        # Dropout on the embedding inputs only: without it the network memorises gene and
        # perturbation identity from the embeddings, which does not transfer to a new cell line.
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.hidden = nn.Linear(2 * embedding_dim + n_features, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(
        self, pert: torch.Tensor, gene: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        pair = self.embedding_dropout(torch.cat([pert, gene], dim=1))
        return self.out(torch.relu(self.hidden(torch.cat([pair, features], dim=1)))).squeeze(1)


@dataclass
class _Inputs:
    pert_index: np.ndarray  # row of the embedding table, -1 when missing
    gene_index: np.ndarray
    features: np.ndarray  # standardised


def _embed(embedding: GeneEmbedding, index: np.ndarray) -> torch.Tensor:
    if embedding.kind == "onehot":
        out = torch.zeros((len(index), embedding.dim), dtype=torch.float32)
        present = np.flatnonzero(index >= 0)
        out[present, index[present]] = 1.0
        return out
    table = embedding.matrix
    out = np.zeros((len(index), table.shape[1]), dtype=np.float32)
    out[index >= 0] = table[index[index >= 0]]
    return torch.from_numpy(out)


def _inputs(
    frame: pd.DataFrame,
    pair: np.ndarray,
    embedding: GeneEmbedding,
    mean: np.ndarray,
    std: np.ndarray,
) -> _Inputs:
    pert_index = embedding.positions(frame["pert"])
    gene_index = embedding.positions(frame["gene"])
    flags = np.stack([pert_index < 0, gene_index < 0], axis=1).astype(np.float32)
    features = np.concatenate([pair, flags], axis=1)
    return _Inputs(pert_index, gene_index, ((features - mean) / std).astype(np.float32))


def _predict(model: PairMLP, embedding: GeneEmbedding, inputs: _Inputs) -> np.ndarray:
    model.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, len(inputs.features), CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            logits = model(
                _embed(embedding, inputs.pert_index[part]),
                _embed(embedding, inputs.gene_index[part]),
                torch.from_numpy(inputs.features[part]),
            )
            scores.append(torch.sigmoid(logits).numpy())
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)


@dataclass
class TrainedVerifier:
    model: PairMLP
    settings: MlpSettings
    feature_mean: np.ndarray
    feature_std: np.ndarray
    train_scores: np.ndarray
    test_scores: np.ndarray
    history: list[float]


def train_verifier(
    train: pd.DataFrame, test: pd.DataFrame, embedding: GeneEmbedding, settings: MlpSettings
) -> TrainedVerifier:
    """Fit on ``train`` only (balanced batches, seeded) and score every train and test row."""
    _check(train, "training rows")
    _check(test, "test rows")
    if train["label"].nunique() < 2:
        raise ValueError("training rows hold a single class; the MLP verifier needs both")
    torch.manual_seed(settings.seed)
    train_inputs, test_inputs, mean, std = standardised_inputs(train, test, embedding, settings)
    model = PairMLP(
        embedding.dim,
        len(FEATURE_NAMES),
        settings.hidden,
        embedding.kind == "onehot",
        settings.embedding_dropout,
    )
    history = _fit(model, embedding, train_inputs, train["label"].to_numpy(), settings)
    return TrainedVerifier(
        model=model,
        settings=settings,
        feature_mean=mean,
        feature_std=std,
        train_scores=_predict(model, embedding, train_inputs),
        test_scores=_predict(model, embedding, test_inputs),
        history=history,
    )


def standardised_inputs(
    train: pd.DataFrame, test: pd.DataFrame, embedding: GeneEmbedding, settings: MlpSettings
) -> tuple[_Inputs, _Inputs, np.ndarray, np.ndarray]:
    """The model inputs of the training and test rows, features standardised by the training
    rows' mean and spread (returned too: they are stored with the weights)."""
    train_pair = out_of_fold_features(train, settings.seed)
    test_pair = pair_features(train, test)
    flags = np.stack(
        [embedding.positions(train["pert"]) < 0, embedding.positions(train["gene"]) < 0], axis=1
    ).astype(np.float32)
    all_train = np.concatenate([train_pair, flags], axis=1)
    mean = all_train.mean(0)
    std = all_train.std(0)
    std = np.where(std == 0, 1.0, std).astype(np.float32)
    train_inputs = _inputs(train, train_pair, embedding, mean, std)
    return train_inputs, _inputs(test, test_pair, embedding, mean, std), mean, std


def _fit(
    model: PairMLP,
    embedding: GeneEmbedding,
    inputs: _Inputs,
    labels: np.ndarray,
    settings: MlpSettings,
) -> list[float]:
    """Adam on balanced batches; the mean loss of each epoch."""
    generator = np.random.default_rng(settings.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    half = max(1, settings.batch_size // 2)
    # One epoch = every positive once, each batch topped up with as many random negatives.
    steps = max(1, len(positives) // half)
    history = []
    for epoch in range(settings.epochs):
        model.train()
        order = generator.permutation(positives)
        total = 0.0
        for step in range(steps):
            batch = np.concatenate(
                [order[step * half : (step + 1) * half], generator.choice(negatives, size=half)]
            )
            logits = model(
                _embed(embedding, inputs.pert_index[batch]),
                _embed(embedding, inputs.gene_index[batch]),
                torch.from_numpy(inputs.features[batch]),
            )
            loss = loss_fn(logits, torch.from_numpy(labels[batch].astype(np.float32)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        history.append(total / steps)
        log.info("epoch %d/%d: mean balanced BCE %.4f", epoch + 1, settings.epochs, history[-1])
    return history


# --------------------------------------------------------------------------------------------
# Metrics and outputs
# --------------------------------------------------------------------------------------------

STRATA: tuple[str, ...] = ("all", "pair_seen_elsewhere=True", "pair_seen_elsewhere=False")


def verifier_metrics(test: pd.DataFrame, scores: np.ndarray, threshold: float) -> dict:
    """Global AUROC, PerturbQA per-gene AUROC and thresholded metrics, per stratum."""
    from rbio.evaluation.metrics import point_metrics

    result: dict = {"threshold": threshold}
    for stratum in STRATA:
        if stratum == "all":
            mask = np.ones(len(test), dtype=bool)
        else:
            column, _, flag = stratum.partition("=")
            if column not in test.columns:
                continue
            mask = test[column].astype(bool).to_numpy() == (flag == "True")
        rows = test[mask]
        values = point_metrics(
            rows["label"].to_numpy(int),
            (scores[mask] >= threshold).astype(int),
            scores[mask],
            rows["gene"].to_numpy(),
        )
        values["n"] = int(mask.sum())
        values["positive_rate"] = float(rows["label"].mean()) if len(rows) else float("nan")
        result[stratum] = values
    return result


@dataclass(frozen=True)
class VerifierFiles:
    """Where a trained MLP verifier goes: weights, config, every row's score, test metrics."""

    model: str | Path
    config: str | Path
    scores: str | Path
    metrics: str | Path


def save_verifier(
    trained: TrainedVerifier,
    embedding: GeneEmbedding,
    embedding_path: str,
    split: str,
    rows: tuple[pd.DataFrame, pd.DataFrame],
    out: VerifierFiles,
) -> dict:
    """Write the verifier of ``split`` trained on ``rows`` (train, test); returns its metrics."""
    from safetensors.torch import save

    train, test = rows
    state = {
        name: tensor.detach().contiguous() for name, tensor in trained.model.state_dict().items()
    }
    state["feature_mean"] = torch.from_numpy(trained.feature_mean.astype(np.float32))
    state["feature_std"] = torch.from_numpy(trained.feature_std.astype(np.float32))
    metadata = {"split": split, "embedding": embedding.kind}
    write_safetensors(save(state, metadata=metadata), out.model)
    write_json(
        out.config,
        {
            "architecture": "concat(emb(pert), emb(gene), pair features) -> Linear -> ReLU -> Linear -> sigmoid",
            "split": split,
            "embedding": {"kind": embedding.kind, "dim": embedding.dim, "path": embedding_path},
            "features": list(FEATURE_NAMES),
            "settings": asdict(trained.settings),
            "training_rows": len(train),
            "training_lines": sorted(train["cell_line"].unique().tolist()),
            "training_loss_per_epoch": [round(v, 6) for v in trained.history],
        },
    )
    scores = pd.concat(
        [
            train[["cell_line", "pert", "gene"]].assign(score=trained.train_scores, part="train"),
            test[["cell_line", "pert", "gene"]].assign(score=trained.test_scores, part="test"),
        ],
        ignore_index=True,
    )
    scores["score"] = scores["score"].astype(float)
    write_parquet(scores, out.scores)
    metrics = verifier_metrics(test, trained.test_scores, trained.settings.threshold)
    metrics["split"] = split
    metrics["training_lines"] = sorted(train["cell_line"].unique().tolist())
    metrics["test_lines"] = sorted(test["cell_line"].unique().tolist())
    write_json(out.metrics, metrics)
    return metrics


def load_scores(path: str | Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def summary_line(metrics: dict) -> str:
    overall = metrics["all"]
    return json.dumps(
        {k: round(overall[k], 4) for k in ("auroc", "auroc_per_gene", "f1", "mcc", "tpr", "tnr")}
    )


def check_training_lines(train: pd.DataFrame, forbidden: Sequence[str], split: str) -> None:
    """Refuse to fit when a held-out line's rows are among the training rows."""
    leaked = sorted(set(train["cell_line"]) & set(forbidden))
    if leaked:
        raise ValueError(f"split '{split}': training rows contain held-out line(s) {leaked}")
