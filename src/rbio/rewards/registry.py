"""Reward names and the composition of a variant's rewards.

Names are what MLflow shows (``rewards/<name>/mean``). A prompt source's default rewards are
declared with the source (``rbio.sources``); a variant may name its own in the config.

>>> get_reward("mention").__name__
'mention'
>>> get_reward("format", max_words=300)
FormatReward(max_words=300, max_thinks=3)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rbio.config import Variant
from rbio.rewards.answer import answer
from rbio.rewards.format import FormatReward
from rbio.rewards.go import (
    GoAnswerEmaReward,
    GoKeywordReward,
    GoKeywordSumReward,
    GoLikelihoodReward,
    GoLikelihoodSumReward,
    GoRougeReward,
    GoRougeSumReward,
)
from rbio.rewards.mention import mention


class RewardFunction(Protocol):
    """TRL's signature: one float (or None where the reward does not apply) per completion."""

    __name__: str

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]: ...


class UnknownRewardError(KeyError):
    """A reward name that is not in :data:`REWARD_NAMES`; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# Name -> the reward: a function (it takes no options) or a class built with its options.
REWARDS: dict[str, RewardFunction | Callable[..., RewardFunction]] = {
    "format": FormatReward,
    "mention": mention,
    "answer": answer,
    "go_keyword": GoKeywordReward,
    "go_rouge": GoRougeReward,
    "go_likelihood": GoLikelihoodReward,
    "go_keyword_sum": GoKeywordSumReward,
    "go_rouge_sum": GoRougeSumReward,
    "go_likelihood_sum": GoLikelihoodSumReward,
    "go_answer_ema": GoAnswerEmaReward,
}
REWARD_NAMES: tuple[str, ...] = tuple(REWARDS)


def _check_name(name: str) -> None:
    if name not in REWARD_NAMES:
        raise UnknownRewardError(
            f"unknown reward {name!r}; valid reward names: {', '.join(REWARD_NAMES)}"
        )


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A reward function by name, a reward class built afresh with ``options`` (``go_likelihood``
    needs ``model`` and ``tokenizer``; ``format`` takes ``max_words``/``max_thinks``).

    >>> get_reward("answr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rbio.rewards.registry.UnknownRewardError: unknown reward 'answr'; valid reward names: format, ...
    """
    _check_name(name)
    factory = REWARDS[name]
    if not isinstance(factory, type):  # a plain reward function: nothing to build
        if options:
            raise TypeError(f"reward '{name}' takes no options, got {sorted(options)}")
        return factory
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        raise TypeError(f"reward {name!r}: bad options {sorted(options)}: {error}") from None
    return factory(**options)


def needs_policy(name: str) -> bool:
    """The reward scores text under the policy being trained (the ``go_likelihood`` ones)."""
    factory = REWARDS[name]
    return isinstance(factory, type) and issubclass(factory, GoLikelihoodReward)


def build_reward_functions(
    variant: Variant, model: Any = None, tokenizer: Any = None
) -> tuple[list[RewardFunction], list[float]]:
    """The reward functions of a variant and their weights, in the order of ``variant.rewards``
    (pass the weights as ``GRPOConfig(reward_weights=...)``). The ``go_likelihood`` rewards get
    the policy ``model`` and ``tokenizer``; asking for them without those raises.

    >>> funcs, weights = build_reward_functions(
    ...     Variant("EXP", {"exp": 1.0}, {"format": 1.0, "mention": 1.0, "answer": 2.0}, ("all",)))
    >>> [f.__name__ for f in funcs], weights
    (['format', 'mention', 'answer'], [1.0, 1.0, 2.0])
    """
    for name in variant.rewards:
        _check_name(name)
    functions: list[RewardFunction] = []
    weights: list[float] = []
    for name, weight in variant.rewards.items():
        if needs_policy(name):
            if model is None or tokenizer is None:
                raise ValueError(
                    f"variant {variant.name!r} uses reward {name!r}, which needs the "
                    "policy model and tokenizer: pass model= and tokenizer="
                )
            functions.append(get_reward(name, model=model, tokenizer=tokenizer))
        else:
            functions.append(get_reward(name))
        weights.append(float(weight))
    return functions, weights
