"""Prompt templates and the builders of each prompt source's training prompts.

The question and system prompts follow rbio1 (Istrate et al. 2025), written anew here: a
DeepSeek-R1-style system prompt (reasoning in <think>, answer in <answer>), a step-by-step variant
for test-time chain of thought, and a Gene Ontology variant that asks for <gene_info> first.
Paraphrases vary the wording; negated paraphrases ask the opposite question, so their expected
answer (and the soft confidences) are flipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbio.config import CELL_LINES, PromptsConfig
from rbio.io import atomic_path, write_json
from rbio.verifiers.confidence import probability_confidence

_FORMAT = (
    "The reasoning process and the answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think>"
    "<answer> answer here </answer>."
)
SYSTEM_PROMPTS: dict[str, str] = {
    "nocot": (
        "A conversation between User and Biologist. The User asks a question, and the Biologist "
        "answers it. The Biologist first thinks about the reasoning process in the mind and then "
        "provides the User with the answer. " + _FORMAT
    ),
    "cot": (
        "A conversation between User and Biologist. The User asks a question, and the Biologist "
        "answers it. The Biologist first thinks about the reasoning process in the mind and then "
        "provides the User with the answer. " + _FORMAT + " Reason step by step: what each gene "
        "does, which pathways and complexes connect them, and how a knockdown of the first could "
        "change the expression of the second, before giving the answer."
    ),
    "go": (
        "A conversation between User and Biologist. The User asks a question, and the Biologist "
        "answers it. The Biologist first writes what is known about each gene (its cellular "
        "components, molecular functions and biological processes) within <gene_info> "
        "</gene_info> tags, then thinks about the reasoning process within <think> </think> tags, "
        "and finally gives the answer within <answer> </answer> tags, i.e., <gene_info> gene "
        "information here </gene_info><think> reasoning process here </think><answer> answer "
        "here </answer>."
    ),
}

_YES_OR_NO = " The answer is either yes or no."


@dataclass(frozen=True)
class Template:
    text: str
    negated: bool  # a "yes" answers "the gene is NOT differentially expressed"


DE_TEMPLATES: tuple[Template, ...] = (
    # 0 is the paper's question; evaluation always asks it.
    Template(
        "Is a knockdown of {pert} in {cell_line} cells likely to result in differential expression of {gene}?",
        False,
    ),
    Template(
        "Would knocking down {pert} in {cell_line} cells change the expression level of {gene}?",
        False,
    ),
    Template(
        "In {cell_line} cells, does a CRISPRi knockdown of {pert} lead to differential expression of {gene}?",
        False,
    ),
    Template(
        "After {pert} is knocked down in {cell_line} cells, is {gene} expected to be differentially expressed?",
        False,
    ),
    Template(
        "Consider a CRISPR interference knockdown of {pert} in {cell_line} cells. Is the expression of {gene} significantly altered?",
        False,
    ),
    Template("Does silencing {pert} in {cell_line} cells perturb the expression of {gene}?", False),
    Template(
        "Is {gene} among the genes differentially expressed when {pert} is knocked down in {cell_line} cells?",
        False,
    ),
    Template(
        "Is a knockdown of {pert} in {cell_line} cells likely to leave the expression of {gene} unchanged?",
        True,
    ),
    Template(
        "Would the expression of {gene} stay the same after knocking down {pert} in {cell_line} cells?",
        True,
    ),
    Template("In {cell_line} cells, is {gene} unaffected by a knockdown of {pert}?", True),
    Template(
        "After {pert} is knocked down in {cell_line} cells, is {gene} expected to show no differential expression?",
        True,
    ),
    Template(
        "Is it unlikely that silencing {pert} in {cell_line} cells changes the expression of {gene}?",
        True,
    ),
)
COEXPRESSION_TEMPLATE = "Are {pert} and {gene} likely to be co-expressed together?"

PROMPT_COLUMNS = (
    "prompt", "source", "cell_line", "pert", "gene", "label", "negated", "template_id",
    "classes", "class_confidences", "keywords", "pert_go_terms", "gene_go_terms",
)  # fmt: skip


def cell_line_name(line: str) -> str:
    """Display name of a cell line key (k562 -> K562); unknown keys pass through."""
    return CELL_LINES.get(line, line)


def question(pert: str, gene: str, cell_line: str, template_id: int = 0) -> str:
    template = DE_TEMPLATES[template_id]
    return (
        template.text.format(pert=pert, gene=gene, cell_line=cell_line_name(cell_line)) + _YES_OR_NO
    )


def build_messages(
    pert: str, gene: str, cell_line: str, style: str = "nocot", template_id: int = 0
) -> list[dict[str, str]]:
    """The conversational prompt (system + user) used in training and evaluation alike."""
    if style not in SYSTEM_PROMPTS:
        raise ValueError(f"unknown prompt style '{style}'; valid: {sorted(SYSTEM_PROMPTS)}")
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[style]},
        {"role": "user", "content": question(pert, gene, cell_line, template_id)},
    ]


def coexpression_messages(gene_a: str, gene_b: str) -> list[dict[str, str]]:
    """TranscriptFormer's off-task question (no cell line: PMI comes from a pan-tissue model)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPTS["nocot"]},
        {
            "role": "user",
            "content": COEXPRESSION_TEMPLATE.format(pert=gene_a, gene=gene_b) + _YES_OR_NO,
        },
    ]


def sample_balanced(
    frame: pd.DataFrame, label: str, limit: int | None, balanced: bool, seed: int
) -> pd.DataFrame:
    """Rows drawn 50:50 by ``label`` (as many as the minority class allows, capped by ``limit``),
    or, unbalanced, a random subset of at most ``limit`` rows. Order is shuffled, seeded."""
    rng = np.random.default_rng(seed)
    if not balanced:
        take = len(frame) if limit is None else min(limit, len(frame))
        return frame.iloc[rng.permutation(len(frame))[:take]].reset_index(drop=True)
    positives = np.flatnonzero(frame[label].to_numpy() == 1)
    negatives = np.flatnonzero(frame[label].to_numpy() == 0)
    per_class = min(len(positives), len(negatives))
    if limit is not None:
        per_class = min(per_class, limit // 2)
    chosen = np.concatenate(
        [
            rng.choice(positives, per_class, replace=False),
            rng.choice(negatives, per_class, replace=False),
        ]
    )
    return frame.iloc[rng.permutation(chosen)].reset_index(drop=True)


def assign_templates(n: int, mode: str, negated_fraction: float, seed: int) -> np.ndarray:
    """Template ids for ``n`` prompts: the base question only, or paraphrases with a share negated."""
    if mode == "base":
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    plain = [i for i, t in enumerate(DE_TEMPLATES) if not t.negated]
    negated = [i for i, t in enumerate(DE_TEMPLATES) if t.negated]
    use_negated = rng.random(n) < negated_fraction
    return np.where(use_negated, rng.choice(negated, n), rng.choice(plain, n))


def _confidences(p_yes: np.ndarray) -> list[str]:
    return [f"{1 - p:.6g}|{p:.6g}" for p in p_yes]


def _de_prompts(
    rows: pd.DataFrame,
    *,
    source: str,
    style: str,
    p_de: np.ndarray | None,
    settings: PromptsConfig,
    seed: int,
) -> pd.DataFrame:
    """Prompt rows for PerturbQA pairs; ``p_de`` = verifier P(DE) per row (None: no answer verifier)."""
    template_ids = assign_templates(len(rows), settings.templates, settings.negated_fraction, seed)
    negated = np.array([DE_TEMPLATES[i].negated for i in template_ids], dtype=bool)
    labels = np.where(negated, 1 - rows["label"].to_numpy(), rows["label"].to_numpy())
    if p_de is None:
        confidences = [""] * len(rows)
    else:
        confidences = _confidences(np.where(negated, 1 - p_de, p_de))
    perts, genes, lines = rows["pert"].tolist(), rows["gene"].tolist(), rows["cell_line"].tolist()
    return pd.DataFrame(
        {
            "prompt": [
                build_messages(p, g, c, style, t)
                for p, g, c, t in zip(perts, genes, lines, template_ids, strict=True)
            ],
            "source": source,
            "cell_line": [cell_line_name(c) for c in lines],
            "pert": perts,
            "gene": genes,
            "label": labels.astype(np.int64),
            "negated": negated,
            "template_id": template_ids.astype(np.int64),
            "classes": "no|yes",
            "class_confidences": confidences,
            "keywords": [[p, g] for p, g in zip(perts, genes, strict=True)],
        }
    )


def _go_terms(
    index: pd.DataFrame, aspects: Sequence[str], max_per_aspect: int
) -> dict[str, list[str]]:
    """gene -> direct GO term names of the chosen aspects (at most ``max_per_aspect`` each, sorted)."""
    chosen = index[index["aspect"].isin(aspects)].sort_values(["gene", "aspect", "go_name"])
    chosen = chosen.groupby(["gene", "aspect"]).head(max_per_aspect)
    return chosen.groupby("gene")["go_name"].agg(list).to_dict()


@dataclass(frozen=True)
class PromptRequest:
    """What a prompt source's builder gets: the source's declaration (``rbio.sources``) and the
    job's training rows, verifier outputs and settings."""

    source: str  # written into every row
    system_prompt: str  # a key of SYSTEM_PROMPTS
    go_aspects: tuple[str, ...] | None  # aspects of the GO terms the rows carry (None: none)
    max_go_terms: int  # GO term names per gene and aspect
    train: pd.DataFrame  # the split's training rows
    verifier_outputs: Mapping[str, pd.DataFrame]  # by the input names the source declares
    settings: PromptsConfig
    seed: int
    # config verifiers.mlp.confidence, for a source whose confidences are the MLP's (else None)
    mlp_confidence: str | None = None

    def sample(self, rows: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
        """Rows drawn by label as config prompts asks (50:50, capped), seeded."""
        cap = self.settings.max_train_prompts if limit is None else limit
        return sample_balanced(rows, "label", cap, self.settings.balanced, self.seed)

    def de_prompts(self, rows: pd.DataFrame, p_de: np.ndarray | None) -> pd.DataFrame:
        return _de_prompts(
            rows,
            source=self.source,
            style=self.system_prompt,
            p_de=p_de,
            settings=self.settings,
            seed=self.seed,
        )


def exp_prompts(request: PromptRequest) -> pd.DataFrame:
    """PerturbQA pairs with their experimental label as a one-hot confidence."""
    rows = request.sample(request.train)
    return request.de_prompts(rows, p_de=rows["label"].to_numpy(float))


def mlp_prompts(request: PromptRequest) -> pd.DataFrame:
    """PerturbQA pairs labelled and scored by the MLP verifier (``mlp_scores``); its P(DE)
    becomes the confidence of "yes" as ``request.mlp_confidence`` says (negated rows: 1 - it)."""
    if request.mlp_confidence is None:
        raise ValueError("MLP prompts need config verifiers.mlp.confidence")
    scores = request.verifier_outputs["mlp_scores"][["cell_line", "pert", "gene", "score"]]
    scored = request.train.merge(scores, on=["cell_line", "pert", "gene"], how="left")
    unscored = scored["score"].isna()
    if unscored.any():
        first = scored[unscored].iloc[0]
        raise ValueError(
            f"MLP scores miss {int(unscored.sum())} training pair(s), e.g. "
            f"({first['cell_line']}, {first['pert']}, {first['gene']})"
        )
    # The verifier's own verdict decides yes/no balance: its labels are what the LLM is taught.
    scored["label"] = (scored["score"] >= 0.5).astype(np.int8)
    rows = request.sample(scored)
    p_de = probability_confidence(rows["score"].to_numpy(float), request.mlp_confidence)
    return request.de_prompts(rows, p_de=p_de)


def tf_prompts(request: PromptRequest) -> pd.DataFrame:
    """TranscriptFormer's co-expression questions (``tf_questions``), off the DE task."""
    settings = request.settings
    limit = settings.max_tf_questions or settings.max_train_prompts
    rows = request.sample(request.verifier_outputs["tf_questions"], limit)
    genes = list(zip(rows["gene_a"], rows["gene_b"], strict=True))
    return pd.DataFrame(
        {
            "prompt": [coexpression_messages(a, b) for a, b in genes],
            "source": request.source,
            "cell_line": "",
            "pert": rows["gene_a"].astype(str),
            "gene": rows["gene_b"].astype(str),
            "label": rows["label"].astype(np.int64),
            "negated": False,
            "template_id": -1,
            "classes": "no|yes",
            "class_confidences": _confidences(rows["confidence"].to_numpy(float)),
            "keywords": [[a, b] for a, b in genes],
        }
    )


def go_prompts(request: PromptRequest) -> pd.DataFrame:
    """PerturbQA pairs with both genes' GO term names (``go_index``); no answer verifier."""
    terms = _go_terms(
        request.verifier_outputs["go_index"], request.go_aspects or (), request.max_go_terms
    )
    train = request.train
    # GO can only score genes it knows: keep pairs where at least one gene is annotated.
    known = train["pert"].isin(terms.keys()) | train["gene"].isin(terms.keys())
    frame = request.de_prompts(request.sample(train[known]), p_de=None)
    frame["pert_go_terms"] = [terms.get(g, _NO_TERMS) for g in frame["pert"]]
    frame["gene_go_terms"] = [terms.get(g, _NO_TERMS) for g in frame["gene"]]
    return frame


_NO_TERMS: list[str] = []


def in_contract_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A builder's rows with the columns of every prompt dataset, in order (no GO terms: [])."""
    if "pert_go_terms" not in frame:
        frame["pert_go_terms"] = [_NO_TERMS] * len(frame)
        frame["gene_go_terms"] = [_NO_TERMS] * len(frame)
    return frame[list(PROMPT_COLUMNS)]


SUMMARY_FILE = "summary.json"  # beside a prompt dataset
# The summary's entry of settings beyond config prompts that shaped the rows (name -> value).
SETTINGS_KEY = "settings"


def save_prompt_dataset(frame: pd.DataFrame, out_dir: str | Path, summary: dict) -> None:
    """Save as a Hugging Face dataset (``datasets.load_from_disk``) plus a summary, atomically."""
    from datasets import Dataset

    with atomic_path(out_dir) as tmp:
        Dataset.from_pandas(frame, preserve_index=False).save_to_disk(str(tmp))
        write_json(tmp / SUMMARY_FILE, summary)


def prompt_settings(out_dir: str | Path) -> dict[str, str]:
    """The settings a saved prompt dataset's summary records ({} without a summary or any)."""
    path = Path(out_dir) / SUMMARY_FILE
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get(SETTINGS_KEY, {}))


def summarise(frame: pd.DataFrame) -> dict:
    return {
        "prompts": len(frame),
        "yes_share": round(float(frame["label"].mean()), 4) if len(frame) else None,
        "negated_share": round(float(frame["negated"].mean()), 4) if len(frame) else None,
        "templates": {
            int(k): int(v) for k, v in frame["template_id"].value_counts().sort_index().items()
        },
        "cell_lines": {str(k): int(v) for k, v in frame["cell_line"].value_counts().items()},
    }
