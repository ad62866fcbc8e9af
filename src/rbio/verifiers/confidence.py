"""Soft verifier scores as answer confidences.

Two mappings of a verifier's P(yes) to the confidence of "yes" (config
``verifiers.mlp.confidence``, :data:`PROBABILITY_CONFIDENCES`): ``raw`` keeps the probability, as
rbio1's code writes the MLP verifier's output ("1-p|p"); ``threshold_centred`` rescales it with
the threshold-centred min–max scaling below, which the TF (PMI) verifier always uses.

>>> probability_confidence([0.2, 0.55, 0.7], "raw").tolist()
[0.2, 0.55, 0.7]
>>> probability_confidence([0.2, 0.55, 0.7], "threshold_centred").round(4).tolist()
[0.0, 0.625, 1.0]

Threshold-centred min–max scaling:

Values on the significant side of the threshold map to [0.5, 1], the others to [0, 0.5], the
threshold itself to 0.5; each side is min–max scaled on its own, so an asymmetric score range
(PMI from 0 to 12 with threshold 2; p-values from 0 to 1 with threshold 0.05) still puts the
threshold at the centre. For p-values and other scores where *lower* is more significant, pass
``higher_is_significant=False``.

>>> threshold_centred([0.0, 0.25, 0.5, 0.75, 1.0], threshold=0.5).tolist()
[0.0, 0.25, 0.5, 0.75, 1.0]
>>> threshold_centred([0.0, 2.0, 12.0], threshold=2.0).tolist()
[0.0, 0.5, 1.0]
>>> threshold_centred([0.001, 0.05, 0.5, 1.0], threshold=0.05, higher_is_significant=False).tolist()
[1.0, 0.5, 0.26315789473684204, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

# numpy is imported where it is used: the config check reads PROBABILITY_CONFIDENCES while a plain
# Snakemake, without numpy, parses the workflow (tests/workflow/test_parse_light.py).
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def threshold_centred(
    values: Sequence[float] | npt.ArrayLike,
    threshold: float,
    higher_is_significant: bool = True,
    lower: float | None = None,
    upper: float | None = None,
) -> npt.NDArray[np.float64]:
    """Map ``values`` to [0, 1] with ``threshold`` at 0.5 (see the module docstring).

    ``lower``/``upper`` fix the range ends (default: the smallest and largest value); values
    outside them are clipped. A side with no spread (all its values equal the threshold) maps to
    0.5. NaN or infinite values raise ValueError: a verifier that produced them is broken.
    """
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if array.size == 0:
        return array.copy()
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array))[:5].tolist()
        raise ValueError(f"threshold_centred: non-finite values at positions {bad}")
    low = float(array.min()) if lower is None else float(lower)
    high = float(array.max()) if upper is None else float(upper)
    low, high = min(low, threshold), max(high, threshold)
    clipped = np.clip(array, low, high)

    above = clipped >= threshold
    result = np.empty_like(clipped)
    upper_span = high - threshold
    lower_span = threshold - low
    result[above] = 0.5 + 0.5 * ((clipped[above] - threshold) / upper_span if upper_span else 0.0)
    result[~above] = 0.5 * ((clipped[~above] - low) / lower_span if lower_span else 1.0)
    if not higher_is_significant:
        result = 1.0 - result
    return np.clip(result, 0.0, 1.0)


# Names of config verifiers.mlp.confidence (the schema's enum lists the same names).
PROBABILITY_CONFIDENCES: tuple[str, ...] = ("raw", "threshold_centred")


def probability_confidence(
    p_yes: Sequence[float] | npt.ArrayLike, mapping: str
) -> npt.NDArray[np.float64]:
    """The confidence of "yes" for each verifier probability ``p_yes``, by ``mapping``.

    ``raw``: the probability itself (rbio1). ``threshold_centred``: min–max scaled on each side
    of 0.5 over the given rows, so the most confident row of each side reaches 0 or 1; it
    depends on which rows were sampled and overstates an under-confident verifier.
    """
    if mapping not in PROBABILITY_CONFIDENCES:
        raise ValueError(
            f"unknown confidence mapping {mapping!r}; valid: {list(PROBABILITY_CONFIDENCES)}"
        )
    import numpy as np

    array = np.asarray(p_yes, dtype=np.float64)
    if mapping == "threshold_centred":
        return threshold_centred(array, threshold=0.5)
    if array.size and not np.all((array >= 0.0) & (array <= 1.0)):
        raise ValueError("raw confidences need probabilities in [0, 1] (a NaN or a logit?)")
    return array.copy()
