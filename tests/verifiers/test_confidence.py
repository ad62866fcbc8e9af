from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rbio.verifiers.confidence import probability_confidence, threshold_centred


def test_sides_scale_separately() -> None:
    assert threshold_centred([0.0, 1.0, 2.0, 7.0, 12.0], threshold=2.0).tolist() == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]


def test_p_values_reverse() -> None:
    out = threshold_centred([0.0, 0.025, 0.05, 1.0], threshold=0.05, higher_is_significant=False)
    assert out.tolist() == [1.0, 0.75, 0.5, 0.0]


def test_fixed_range_clips() -> None:
    out = threshold_centred([-1.0, 0.5, 2.0], threshold=0.5, lower=0.0, upper=1.0)
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_degenerate_sides() -> None:
    assert threshold_centred([3.0, 3.0], threshold=3.0).tolist() == [0.5, 0.5]
    assert threshold_centred([1.0, 2.0], threshold=2.0).tolist() == [0.0, 0.5]
    assert threshold_centred([], threshold=0.0).size == 0


def test_non_finite_raises() -> None:
    with pytest.raises(ValueError, match="positions \\[1\\]"):
        threshold_centred([0.1, float("nan")], threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        threshold_centred([0.1], threshold=float("inf"))


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=50), finite, st.booleans())
def test_range_order_and_centre(values: list[float], threshold: float, higher: bool) -> None:
    out = threshold_centred(values, threshold, higher_is_significant=higher)
    assert np.all((out >= 0.0) & (out <= 1.0))
    array = np.asarray(values)
    order = np.argsort(array, kind="stable")
    sorted_out = out[order] if higher else -out[order]
    assert np.all(np.diff(sorted_out) >= -1e-12)  # monotone in the value
    significant = array >= threshold if higher else array <= threshold
    assert np.all(out[significant] >= 0.5) and np.all(out[~significant] <= 0.5)
    assert np.all(out[array == threshold] == 0.5)


def test_raw_confidence_is_the_probability_and_checks_its_range() -> None:
    assert probability_confidence([0.2, 0.55, 0.7], "raw").tolist() == [0.2, 0.55, 0.7]
    assert probability_confidence([0.2, 0.55, 0.7], "threshold_centred").tolist() == pytest.approx(
        [0.0, 0.625, 1.0]
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        probability_confidence([0.2, 1.5], "raw")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        probability_confidence([float("nan")], "raw")
    with pytest.raises(ValueError, match=r"valid: \['raw', 'threshold_centred'\]"):
        probability_confidence([0.2], "minmax")
