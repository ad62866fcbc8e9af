"""The prompt sources, each declared once: a kind of training prompt and the verifier scoring it.

Everything else reads this module: the config checks a variant's sources and takes their default
rewards from here, the workflow constrains the ``{source}`` wildcard and hands ``build_prompts``
the verifier outputs a source declares, the prompt rule calls the source's builder, and the
rewards learn which rows answer in the Gene Ontology format. Adding a source is a declaration
here, its builder in ``rbio.data.prompts``, its rewards and the schema's list of source names
(``docs/architecture.md``, "Adding a verifier").

>>> SOURCES["go_c"].label, SOURCES["go_c"].verifier_outputs
('GO-C', {'go_index': 'results/verifiers/go/index.parquet'})
>>> default_rewards({"exp": 1.0, "go": 1.0}, go_composition="answer_ema")
{'format': 1.0, 'mention': 1.0, 'answer': 2.0, 'go_answer_ema': 2.0}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rbio.config import GoConfig, PromptsConfig

# The workflow reads SOURCES while Snakemake parses it, and a plain Snakemake
# (--software-deployment-method conda) has no pandas: the prompt builders (rbio.data.prompts,
# pandas) are named here and imported when a source builds its prompts
# (tests/workflow/test_parse_light.py).
if TYPE_CHECKING:
    import pandas as pd

    from rbio.data.prompts import PromptRequest

# GO term aspects a source takes from config verifiers.go.aspects rather than fixing its own.
ASPECTS_FROM_CONFIG = "verifiers.go.aspects"
# Default rewards a source takes from config verifiers.go.composition (GO_COMPOSITIONS).
REWARDS_FROM_CONFIG = "verifiers.go.composition"


@dataclass(frozen=True)
class PromptSource:
    """Everything the pipeline knows about one prompt source."""

    name: str  # the config key (variants.*.sources) and the {source} wildcard
    label: str  # the paper's name
    verifier: str  # what scores its prompts
    # The function of ``rbio.data.prompts`` that builds the source's prompt rows from a
    # PromptRequest (``build``).
    builder: str
    # The rule's input name -> the verifier output the builder reads ({split}: the job's split).
    verifier_outputs: Mapping[str, str] = field(default_factory=dict)
    system_prompt: str = "nocot"  # a key of rbio.data.prompts.SYSTEM_PROMPTS
    # GO aspects whose term names the rows carry (None: no GO terms; ASPECTS_FROM_CONFIG).
    go_aspects: tuple[str, ...] | str | None = None
    # Reward name -> weight, for a variant that names no rewards (rbio.rewards.registry), or
    # REWARDS_FROM_CONFIG.
    default_rewards: Mapping[str, float] | str = field(default_factory=dict)
    # Its answer confidences are the MLP verifier's P(DE), mapped as verifiers.mlp.confidence says.
    uses_mlp_confidence: bool = False
    # Its verifier knows the experimental label of every training row (a variant with this source
    # may be taught those labels, e.g. the SFT answers of its GO rows: rbio.training.sft).
    sees_labels: bool = False

    def rewards(self, go_composition: str) -> Mapping[str, float]:
        """Reward name -> weight of this source's rows under the configured GO composition."""
        if isinstance(self.default_rewards, str):  # REWARDS_FROM_CONFIG
            return GO_COMPOSITIONS[go_composition]
        return self.default_rewards

    @property
    def build(self) -> Callable[[PromptRequest], pd.DataFrame]:
        """The prompt builder this source names."""
        from rbio.data import prompts

        return getattr(prompts, self.builder)

    @property
    def uses_go_settings(self) -> bool:
        """Its prompts depend on config verifiers.go (the rule passes it as a param)."""
        return self.go_aspects is not None

    def prompts(
        self,
        train: pd.DataFrame,
        settings: PromptsConfig,
        *,
        seed: int,
        go: GoConfig | None = None,
        mlp_confidence: str | None = None,
        verifier_outputs: Mapping[str, pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """This source's training prompt rows for one split's training rows (the columns of
        docs/architecture.md); ``verifier_outputs`` by the names this source declares;
        ``mlp_confidence``: config verifiers.mlp.confidence, needed where uses_mlp_confidence."""
        given = dict(verifier_outputs or {})
        missing = sorted(set(self.verifier_outputs) - set(given))
        if missing:
            raise ValueError(
                f"source '{self.name}' needs {missing}: "
                + ", ".join(self.verifier_outputs[name] for name in missing)
            )
        if self.uses_go_settings and go is None:
            raise ValueError(f"source '{self.name}' needs the verifiers.go settings")
        if self.uses_mlp_confidence and mlp_confidence is None:
            raise ValueError(f"source '{self.name}' needs config verifiers.mlp.confidence")
        from rbio.data import prompts

        request = prompts.PromptRequest(
            source=self.name,
            system_prompt=self.system_prompt,
            go_aspects=go.aspects if self.go_aspects == ASPECTS_FROM_CONFIG else self.go_aspects,
            max_go_terms=go.max_terms_per_aspect if self.uses_go_settings else 0,
            train=train,
            verifier_outputs=given,
            settings=settings,
            seed=seed,
            mlp_confidence=mlp_confidence if self.uses_mlp_confidence else None,
        )
        return prompts.in_contract_columns(self.build(request))


# The rbio code's composition: total = format + 2 x answer + mention for label-like sources; GO
# sources score what the model writes in <gene_info> instead of an answer, composed as config
# verifiers.go.composition names (README, "Where this differs from the authors' code"):
LABEL_REWARDS = {"format": 1.0, "mention": 1.0, "answer": 2.0}
GO_COMPOSITIONS: dict[str, Mapping[str, float]] = {
    # This pipeline's bounded one: keyword and mean ROUGE-1/2/L, each averaged over the
    # annotated genes; GO in [0, 2] beside format + mention in [0, 2].
    "mean": {"format": 1.0, "mention": 1.0, "go_keyword": 1.0, "go_rouge": 1.0},
    # The authors' early code: per gene keyword + ROUGE-1 + ROUGE-2 + ROUGE-L + likelihood,
    # summed over both genes (an unannotated gene adds 0); GO up to 8 (likelihood <= 0).
    "sum": {
        "format": 1.0,
        "mention": 1.0,
        "go_keyword_sum": 1.0,
        "go_rouge_sum": 1.0,
        "go_likelihood_sum": 1.0,
    },
    # The authors' later code: the GO score as the answer reward, normalised online by an
    # exponential moving average and a sigmoid, weighted like `answer`.
    "answer_ema": {"format": 1.0, "mention": 1.0, "go_answer_ema": 2.0},
}
GO_INDEX = {"go_index": "results/verifiers/go/index.parquet"}


def _go_source(
    name: str, label: str, aspects: tuple[str, ...] | str, verifier: str
) -> PromptSource:
    return PromptSource(
        name=name,
        label=label,
        verifier=verifier,
        builder="go_prompts",
        verifier_outputs=GO_INDEX,
        system_prompt="go",
        go_aspects=aspects,
        default_rewards=REWARDS_FROM_CONFIG,
    )


SOURCES: dict[str, PromptSource] = {
    source.name: source
    for source in (
        PromptSource(
            name="exp",
            label="EXP",
            verifier="PerturbQA's experimental labels (hard)",
            builder="exp_prompts",
            default_rewards=LABEL_REWARDS,
            sees_labels=True,
        ),
        PromptSource(
            name="mlp",
            label="MLP",
            verifier="the MLP verifier's P(DE) (soft)",
            builder="mlp_prompts",
            verifier_outputs={"mlp_scores": "results/verifiers/mlp/{split}/scores.parquet"},
            default_rewards=LABEL_REWARDS,
            uses_mlp_confidence=True,
        ),
        PromptSource(
            name="tf",
            label="TF",
            verifier="TranscriptFormer PMI co-expression questions (soft, off-task)",
            builder="tf_prompts",
            verifier_outputs={"tf_questions": "results/verifiers/tf_pmi/questions.parquet"},
            default_rewards=LABEL_REWARDS,
        ),
        _go_source("go_c", "GO-C", ("C",), "the genes' GO cellular component terms"),
        _go_source("go_f", "GO-F", ("F",), "the genes' GO molecular function terms"),
        _go_source("go_p", "GO-P", ("P",), "the genes' GO biological process terms"),
        _go_source(
            "go", "GO", ASPECTS_FROM_CONFIG, "the genes' GO terms of every configured aspect"
        ),
    )
}

# Sources whose completions start with <gene_info> (their system prompt asks for it first): the
# format reward checks that block, the GO rewards score it.
GO_SOURCES: frozenset[str] = frozenset(
    name for name, source in SOURCES.items() if source.system_prompt == "go"
)


def default_rewards(sources: Mapping[str, float], *, go_composition: str) -> dict[str, float]:
    """Union of the sources' default rewards (the GO sources' by ``go_composition``, a key of
    :data:`GO_COMPOSITIONS`); a reward shared by sources keeps its largest weight."""
    weights: dict[str, float] = {}
    for name in sources:
        for reward, weight in SOURCES[name].rewards(go_composition).items():
            weights[reward] = max(weight, weights.get(reward, weight))
    return weights


def go_composition_of(rewards: Mapping[str, float]) -> str | None:
    """The GO composition whose own rewards (those not in every composition) are all in
    ``rewards`` with its weights; None where no composition's or more than one's are.

    >>> go_composition_of({"format": 1.0, "go_answer_ema": 2.0}), go_composition_of({"answer": 2})
    ('answer_ema', None)
    """
    shared = set.intersection(*(set(composition) for composition in GO_COMPOSITIONS.values()))
    found = [
        name
        for name, composition in GO_COMPOSITIONS.items()
        if all(
            rewards.get(reward) == weight
            for reward, weight in composition.items()
            if reward not in shared
        )
    ]
    return found[0] if len(found) == 1 else None
