"""Known answers for coherence: the O(n d) formula, zero displacements, random walks, interpretation."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from duckling.metrics import coherence as C


def brute_force(D) -> tuple[float, int]:
    D = np.asarray(D, dtype=np.float64)
    norms = np.linalg.norm(D, axis=1)
    U = D[norms > 0] / norms[norms > 0, None]
    n = len(U)
    if n < 2:
        return math.nan, n
    cos = U @ U.T
    return float((cos.sum() - np.trace(cos)) / (n * (n - 1))), n


def unit_vectors(rng, shape) -> np.ndarray:
    g = rng.standard_normal(shape)
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def test_identical_and_opposite_displacements():
    D = np.tile(np.array([1.0, -2.0, 0.5], dtype=np.float32), (10, 1))
    out = C.coherence(D)
    assert out["mean_cos"] == pytest.approx(1.0, abs=1e-7) and out["n_moving"] == 10 and out["n_zero"] == 0
    assert C.centroid_alignment(D) == pytest.approx(1.0, abs=1e-7)
    pair = np.array([[1.0, 2.0], [-2.0, -4.0]])
    assert C.coherence(pair)["mean_cos"] == pytest.approx(-1.0)
    assert math.isnan(C.centroid_alignment(np.array([[1.0, 2.0], [-1.0, -2.0]])))  # centroid at rest


def test_zero_displacements_are_counted_apart():
    D = np.zeros((8, 4), dtype=np.float32)
    D[:5] = [0.0, 3.0, 0.0, 0.0]
    D[5] = [0.0, 0.0, 2.0, 0.0]
    out = C.coherence(D)
    assert out["n_moving"] == 6 and out["n_zero"] == 2
    # pairs among the 5 identical: cos 1 (20 ordered pairs); pairs with the orthogonal one: 0 (10)
    assert out["mean_cos"] == pytest.approx(20 / 30)
    # centroid displacement m = (0, 15, 2, 0) / 8 over all 8 tokens
    m = np.array([0.0, 15.0, 2.0, 0.0])
    expect = (5 * m[1] + m[2]) / np.linalg.norm(m) / 6
    assert C.centroid_alignment(D) == pytest.approx(expect)
    assert out["centroid_cos"] == pytest.approx(expect)


def test_fewer_than_two_moving_is_nan():
    one = np.zeros((5, 3))
    one[2] = [1.0, 0.0, 0.0]
    out = C.coherence(one)
    assert math.isnan(out["mean_cos"]) and out["n_moving"] == 1 and out["n_zero"] == 4
    none = C.coherence(np.zeros((4, 3), dtype=np.float32))
    assert math.isnan(none["mean_cos"]) and none["n_moving"] == 0
    assert math.isnan(C.centroid_alignment(np.zeros((4, 3))))
    assert math.isnan(C.coherence(np.zeros((0, 3)))["mean_cos"])


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(0, 25), st.integers(1, 12)),
                  elements=st.one_of(st.just(0.0),
                                     st.floats(-2.0 ** 20, 2.0 ** 20, width=32),
                                     st.floats(-2.0 ** -66, 2.0 ** -66, width=32))))
def test_linear_formula_equals_brute_force(D):
    expect, n = brute_force(D)
    out = C.coherence(D)
    assert out["n_moving"] == n and out["n_zero"] == D.shape[0] - n
    if n < 2:
        assert math.isnan(out["mean_cos"])
    else:
        assert out["mean_cos"] == pytest.approx(expect, abs=2e-6)


def test_linear_formula_equals_brute_force_seeded():
    rng = np.random.default_rng(7)
    for n, d in [(2, 1), (3, 128), (50, 7), (300, 128)]:
        D = rng.standard_normal((n, d)) + rng.standard_normal(d)
        assert C.coherence(D)["mean_cos"] == pytest.approx(brute_force(D)[0], abs=1e-12)
        assert C.coherence(D.astype(np.float32))["mean_cos"] == pytest.approx(brute_force(D)[0], abs=1e-6)


def test_norms_argument_gives_the_same_answer():
    rng = np.random.default_rng(8)
    D = rng.standard_normal((100, 16)).astype(np.float32)
    D[::7] = 0
    assert C.coherence(D, np.linalg.norm(D, axis=1)) == pytest.approx(C.coherence(D))


@pytest.mark.parametrize("n", [10, 100, 2000, 7900])
def test_independent_random_walks_look_independent(n):
    d = 128
    rng = np.random.default_rng(n)
    W0 = rng.standard_normal((n, d)).astype(np.float32)
    W1 = W0 + 1e-2 * rng.standard_normal((n, d)).astype(np.float32)
    out = C.coherence(W1 - W0)
    sd = C.expected_random(n, d)
    assert abs(out["mean_cos"]) < 5 * sd
    assert C.interpret(out["mean_cos"], n, d).startswith("independent")
    # m contains each D_i, so independent tokens align with it at about 1/sqrt(n), not 0
    assert 0.5 / math.sqrt(n) < C.centroid_alignment(W1 - W0) < 2 / math.sqrt(n)


def test_centroid_alignment_for_equal_lengths():
    # with |D_i| all equal, alignment = |sum u_i| / n = sqrt((1 + (n - 1) mean_cos) / n)
    rng = np.random.default_rng(4)
    for n, shift in [(5, 0.0), (200, 0.0), (200, 0.3)]:
        D = unit_vectors(rng, (n, 16)) + shift
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        c = C.coherence(D)["mean_cos"]
        assert C.centroid_alignment(D) == pytest.approx(math.sqrt((1 + (n - 1) * c) / n), rel=1e-12)


@pytest.mark.parametrize("n,d,trials", [(2, 3, 40000), (10, 8, 20000), (40, 16, 5000)])
def test_expected_random_matches_monte_carlo(n, d, trials):
    rng = np.random.default_rng(n * 1000 + d)
    U = unit_vectors(rng, (trials, n, d))
    s = U.sum(axis=1)
    coh = (np.einsum("ij,ij->i", s, s) - n) / (n * (n - 1))
    sd = C.expected_random(n, d)
    assert abs(coh.mean()) < 5 * sd / math.sqrt(trials)
    # the relative standard error of a sample sd is about 1 / sqrt(2 trials): 0.4% .. 1% here
    assert coh.std() == pytest.approx(sd, rel=4 / math.sqrt(2 * trials))


def test_expected_random_formula():
    assert C.expected_random(2, 1) == 1.0
    assert C.expected_random(100, 128) == pytest.approx(math.sqrt(2 / (100 * 99 * 128)))
    assert math.isnan(C.expected_random(1, 128))


def test_interpret_labels():
    d = 128
    rng = np.random.default_rng(1)
    common = rng.standard_normal(d)
    swarm = common + 0.1 * rng.standard_normal((500, d))
    partly = common / math.sqrt(d) * 0.5 + rng.standard_normal((500, d)) / math.sqrt(d)
    mc_s, mc_p = C.coherence(swarm)["mean_cos"], C.coherence(partly)["mean_cos"]
    assert C.interpret(mc_s, 500, d).startswith("swarm")
    assert 0.05 < mc_p < 0.5 and C.interpret(mc_p, 500, d).startswith("partly coherent")
    assert C.interpret(-1.0, 2, d).startswith("anti-aligned")
    assert C.interpret(math.nan, 1, d).startswith("undefined")
