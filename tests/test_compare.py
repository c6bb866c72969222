"""Known answers for phantom vs natural dead comparisons."""
import math

import numpy as np
import pytest

from duckling.metrics import compare


def test_identical_distributions_give_large_p():
    rng = np.random.default_rng(0)
    a = rng.lognormal(-9, 0.5, 2000)
    same = compare.speed_tests(a, a.copy())
    assert same["ks_stat"] == 0.0 and same["ks_p"] == 1.0 and same["mw_p"] == pytest.approx(1.0)
    assert same["mw_auc"] == pytest.approx(0.5)
    b = rng.lognormal(-9, 0.5, 100)
    out = compare.speed_tests(a, b)
    assert out["ks_p"] > 0.05 and out["mw_p"] > 0.05 and out["n_a"] == 2000 and out["n_b"] == 100
    assert out["note"] == ""


def test_shifted_distributions_give_small_p():
    rng = np.random.default_rng(1)
    a = rng.lognormal(-9, 0.5, 2000)
    b = rng.lognormal(-8, 0.5, 100)
    out = compare.speed_tests(a, b)
    assert out["ks_p"] < 1e-10 and out["mw_p"] < 1e-10
    assert out["mw_auc"] < 0.2 and out["median_a"] < out["median_b"]


def test_fully_separated_samples():
    out = compare.speed_tests(np.arange(10.0, 20.0), np.arange(5.0))
    assert out["ks_stat"] == 1.0 and out["mw_u"] == 50.0 and out["mw_auc"] == 1.0


def test_all_tied_frozen_speeds():
    out = compare.speed_tests(np.zeros(2000), np.zeros(100))
    assert out["ks_stat"] == 0.0 and out["ks_p"] == 1.0 and out["mw_p"] == 1.0


def test_empty_sets_give_nan_and_a_note():
    out = compare.speed_tests(np.ones(10), np.array([]))
    assert all(math.isnan(out[k]) for k in ("ks_stat", "ks_p", "mw_u", "mw_p", "mw_auc", "median_b"))
    assert out["n_b"] == 0 and "b is empty" in out["note"] and out["median_a"] == 1.0
    both = compare.speed_tests([], [np.nan])
    assert "a and b are empty" in both["note"]


def test_drift_angle_of_known_vectors():
    z = np.zeros(3)
    x, y = np.array([1.0, 0, 0]), np.array([0, 2.0, 0])
    assert compare.drift_angle(z, x, z, y) == 90.0
    assert compare.drift_angle(z, x, z, -3 * x) == 180.0
    assert compare.drift_angle(z, x, z, 5 * x) == 0.0
    assert compare.drift_angle(z, x, z, x + y / 2) == pytest.approx(45.0)
    c0 = np.array([1.0, 1.0, 1.0])
    assert compare.drift_angle(c0, c0 + x, -c0, -c0 + np.array([1.0, math.sqrt(3), 0])) == pytest.approx(60.0)
    assert compare.drift_angle(z, x, z, x * 1e-3 + y * 5e-13) == pytest.approx(math.degrees(1e-9), rel=1e-6)
    assert math.isnan(compare.drift_angle(c0, c0, z, x))
