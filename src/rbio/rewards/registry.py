"""Reward names, the default rewards of each prompt source, and per-variant composition.

Names are what MLflow shows (``rewards/<name>/mean``). This module stays import-light: the
workflow reads it while parsing the Snakefile, so the reward implementations (and torch, for
``go_likelihood``) are imported only when a reward is built.

>>> get_reward("mention").__name__
'mention'
>>> get_reward("format", max_words=300)
FormatReward(max_words=300, max_thinks=3)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rbio.config import Variant


class RewardFunction(Protocol):
    """TRL's reward signature: one float (or None where the reward does not apply) per completion."""

    __name__: str

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]: ...


class UnknownRewardError(KeyError):
    """A reward name that is not in :data:`REWARD_NAMES`; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


REWARD_NAMES: tuple[str, ...] = (
    "format",
    "mention",
    "answer",
    "go_keyword",
    "go_rouge",
    "go_likelihood",
)

# The rbio code's composition: total = format + 2 x answer + mention for label-like sources; GO
# sources score what the model writes in <gene_info> instead of an answer.
_LABEL_REWARDS = {"format": 1.0, "mention": 1.0, "answer": 2.0}
_GO_REWARDS = {"format": 1.0, "mention": 1.0, "go_keyword": 1.0, "go_rouge": 1.0}
SOURCE_DEFAULT_REWARDS: dict[str, dict[str, float]] = {
    "exp": _LABEL_REWARDS,
    "mlp": _LABEL_REWARDS,
    "tf": _LABEL_REWARDS,
    "go_c": _GO_REWARDS,
    "go_f": _GO_REWARDS,
    "go_p": _GO_REWARDS,
    "go": _GO_REWARDS,
}


def default_rewards(sources: Mapping[str, float]) -> dict[str, float]:
    """Union of the sources' default rewards; a reward shared by sources keeps its largest weight."""
    weights: dict[str, float] = {}
    for source in sources:
        for name, weight in SOURCE_DEFAULT_REWARDS[source].items():
            weights[name] = max(weight, weights.get(name, weight))
    return weights


def _factories() -> dict[str, Callable[..., RewardFunction]]:
    # Imported here, not at module level: config.py imports this module at Snakefile parse time.
    from rbio.rewards.answer import answer
    from rbio.rewards.format import FormatReward
    from rbio.rewards.go import GoKeywordReward, GoLikelihoodReward, GoRougeReward
    from rbio.rewards.mention import mention

    def plain(function: RewardFunction) -> Callable[..., RewardFunction]:
        def build(**kwargs: Any) -> RewardFunction:
            if kwargs:
                raise TypeError(
                    f"reward '{function.__name__}' takes no options, got {sorted(kwargs)}"
                )
            return function

        return build

    return {
        "format": FormatReward,
        "mention": plain(mention),
        "answer": plain(answer),
        "go_keyword": GoKeywordReward,
        "go_rouge": GoRougeReward,
        "go_likelihood": GoLikelihoodReward,
    }


def _check_name(name: str) -> None:
    if name not in REWARD_NAMES:
        raise UnknownRewardError(
            f"unknown reward {name!r}; valid reward names: {', '.join(REWARD_NAMES)}"
        )


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A fresh reward function by name; ``options`` go to its constructor (``go_likelihood``
    needs ``model`` and ``tokenizer``; ``format`` takes ``max_words``/``max_thinks``).

    >>> get_reward("answr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rbio.rewards.registry.UnknownRewardError: unknown reward 'answr'; valid reward names: format, ...
    """
    _check_name(name)
    factory = _factories()[name]
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        raise TypeError(f"reward {name!r}: bad options {sorted(options)}: {error}") from None
    return factory(**options)


def build_reward_functions(
    variant: Variant, model: Any = None, tokenizer: Any = None
) -> tuple[list[RewardFunction], list[float]]:
    """The reward functions of a variant and their weights, in the order of ``variant.rewards``
    (pass the weights as ``GRPOConfig(reward_weights=...)``). ``go_likelihood`` gets the policy
    ``model`` and ``tokenizer``; asking for it without them raises.

    >>> from rbio.config import Variant
    >>> funcs, weights = build_reward_functions(
    ...     Variant("EXP", {"exp": 1.0}, default_rewards({"exp": 1.0}), ("loco_k562",)))
    >>> [f.__name__ for f in funcs], weights
    (['format', 'mention', 'answer'], [1.0, 1.0, 2.0])
    """
    for name in variant.rewards:
        _check_name(name)
    functions: list[RewardFunction] = []
    weights: list[float] = []
    for name, weight in variant.rewards.items():
        if name == "go_likelihood":
            if model is None or tokenizer is None:
                raise ValueError(
                    f"variant {variant.name!r} uses reward 'go_likelihood', which needs the "
                    "policy model and tokenizer: pass model= and tokenizer="
                )
            functions.append(get_reward(name, model=model, tokenizer=tokenizer))
        else:
            functions.append(get_reward(name))
        weights.append(float(weight))
    return functions, weights
