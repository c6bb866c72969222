"""Known answers for speeds, cumulative displacement, quantiles and the late-phase power law."""
import math

import numpy as np
import pytest

from duckling.errors import DucklingError
from duckling.metrics import cooling


def test_speed_and_cumulative_displacement():
    X0 = np.zeros((3, 4), dtype=np.float32)
    X1 = np.array([[3, 4, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=np.float32)
    X2 = X1 + np.array([[0, 0, 0, 1], [0, 0, 0, 0], [-1, -1, -1, -1]], dtype=np.float32)
    s = cooling.speed(X1, X2)
    assert s.dtype == np.float64 and s.tolist() == [1.0, 0.0, 2.0]
    assert cooling.cumulative_displacement(X0, X2).tolist() == [math.sqrt(26), 0.0, 0.0]


def test_tiny_and_huge_displacements_are_not_lost():
    X = np.array([[1e-30, 0.0], [3e-23, 4e-23], [3e20, 4e20]], dtype=np.float32)
    s = cooling.speed(np.zeros_like(X), X)
    np.testing.assert_allclose(s, [1e-30, 5e-23, 5e20], rtol=1e-6)
    assert np.all(s > 0)


def test_speed_quantiles():
    np.testing.assert_allclose(cooling.quantiles(np.arange(101.0), cooling.QUANTILES), [10, 50, 90])
    np.testing.assert_allclose(cooling.quantiles(np.arange(11.0), (0.25,)), [2.5])
    assert np.isnan(cooling.quantiles(np.array([]), cooling.QUANTILES)).all()


def test_quantiles_are_numpys_bit_for_bit():
    rng = np.random.default_rng(0)
    qs = (0.0, 0.1, 0.25, 0.5, 0.5, 0.9, 0.999, 1.0)
    for n in (1, 2, 3, 7, 10, 101, 2000, 7881):
        for x in (rng.standard_normal(n) * 1e-3, rng.integers(0, 4, n).astype(np.float64),  # ties
                  np.exp(rng.standard_normal(n) * 30)):  # many decades
            assert np.array_equal(cooling.quantiles(x, qs), np.quantile(x, qs)), n
    x = rng.random(50)
    x[17] = np.nan
    assert np.isnan(cooling.quantiles(x, (0.1, 0.5))).all() and np.isnan(np.quantile(x, (0.1, 0.5))).all()
    x = np.array([np.inf, 1.0, 2.0, 0.5])  # inf - inf and inf * 0 give NaN, as in numpy
    with np.errstate(invalid="ignore"):
        assert np.array_equal(cooling.quantiles(x, (0.1, 0.5, 0.8)), np.quantile(x, (0.1, 0.5, 0.8)), equal_nan=True)


def test_late_slope_recovers_a_power_law():
    steps = np.arange(1, 10001)
    q = 3.0 * steps ** -0.7
    q[:50] = steps[:50] * 1e-3  # a warm-up rise that the late phase must not see
    out = cooling.late_slope(steps, q)
    assert out["slope"] == pytest.approx(-0.7, abs=1e-10)
    assert out["intercept"] == pytest.approx(math.log10(3.0), abs=1e-9)
    assert out["r2"] == pytest.approx(1.0)
    assert out["start_step"] == 100 and out["n"] == 9901 and out["dropped"] == 0


def test_late_slope_with_noise_zeros_and_a_step_zero_frame():
    rng = np.random.default_rng(0)
    steps = np.arange(0, 14271, 10)
    q = 2e-3 * np.maximum(steps, 1) ** -0.45 * np.exp(rng.normal(0, 0.1, steps.size))
    q[-5:] = 0.0  # frozen quantile: no logarithm
    out = cooling.late_slope(steps, q)
    assert out["slope"] == pytest.approx(-0.45, abs=0.03)
    # late phase starts at sqrt(10 * 14270) = 377.8 -> first frame 380; step 0 has no logarithm
    assert out["start_step"] == 380 and out["dropped"] == 5
    assert out["n"] == (14270 - 380) // 10 + 1 - 5


def test_late_slope_degenerate_inputs():
    assert math.isnan(cooling.late_slope([0, 1], [1.0, 1.0])["slope"])
    flat = cooling.late_slope([1, 10, 100, 1000], [2.0, 2.0, 2.0, 2.0])
    assert flat["slope"] == 0.0 and math.isnan(flat["r2"])
    assert math.isnan(cooling.late_slope([1, 10, 100], [0.0, 0.0, 0.0])["slope"])
    with pytest.raises(DucklingError):
        cooling.late_slope([1, 2], [1.0])
