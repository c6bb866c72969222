"""The compiled sweep against the reference metric functions, on realistic and adversarial frames."""
import numpy as np
import pytest

from duckling import movie
from duckling.analyze import fast
from duckling.errors import DucklingError
from duckling.metrics import cloud, coherence, cooling, lattice


def walk(n=700, d=128, seed=0):
    """Four bf16 frames of a cloud on a random walk: now, prev, first, back."""
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n, d)) * 0.02).astype(np.float32)
    frames = []
    for _ in range(4):  # steps of about 8 bf16 cells at |w| ~ 0.02
        frames.append(movie.float32_to_bf16_bits(W))
        W = W + (rng.standard_normal((n, d)) * 1e-3).astype(np.float32)
    W[:50] = 0.0  # rows that sit still at zero
    first, back, prev = frames[0], frames[1], frames[3]
    now = movie.float32_to_bf16_bits(W)
    now[:50], prev[:50] = 0, 0x8000  # +0 now, -0 before: the same cell, no movement
    now[50:60] = prev[50:60]  # unmoved rows
    return now, prev, first, back


def adversarial(n=2000, d=64, seed=1):
    """Any bit patterns: +-0, subnormals, inf, NaN, sign flips, huge jumps; and some small moves."""
    rng = np.random.default_rng(seed)
    prev = rng.integers(0, 1 << 16, (n, d), dtype=np.uint16)
    now = prev.copy()
    pick = rng.random((n, d))
    now[pick < 0.3] ^= 0x8000  # sign flips (+0 <-> -0 among them)
    step = rng.integers(-3, 4, (n, d)).astype(np.int32)
    small = (pick >= 0.3) & (pick < 0.7)
    now[small] = (now[small].astype(np.int32) + step[small]).clip(0, 0xFFFF).astype(np.uint16)
    now[pick >= 0.95] = rng.integers(0, 1 << 16, int((pick >= 0.95).sum()), dtype=np.uint16)
    now[::7] = prev[::7]  # frozen rows
    special = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x7F80, 0xFF80, 0x7FC0, 0x007F], np.uint16)
    prev[:8, 0], now[:8, 0] = special, special[::-1]
    prev[10:14], now[10:14] = 0x3F80, 0x3F80  # 1.0: then one cell, four single cells, a double cell
    now[10, 0], now[11, :4], now[12, 0] = 0x3F81, 0x3F81, 0x3F82
    return now, prev


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_lattice_numbers_are_exactly_the_reference_on_any_bits():
    now, prev = adversarial()
    r = fast.sums(now, prev)
    L1, Linf, L2 = lattice.lattice_displacement(prev, now)
    assert np.array_equal(r.L1, L1) and np.array_equal(r.Linf, Linf)
    exact = r.L2sq < 2 ** 24  # the reference sums squares in float32: exact below 2**24
    assert np.array_equal(np.sqrt(r.L2sq[exact]), L2[exact])
    np.testing.assert_allclose(np.sqrt(r.L2sq), L2, rtol=1e-6)
    d = now.shape[1]
    assert np.array_equal(lattice.classify(r.L1, r.Linf, np.sqrt(r.L2sq), d), lattice.classify(L1, Linf, L2, d))
    assert np.array_equal(r.ulp_max, lattice.ulp_displacement(prev, now)[0], equal_nan=True)
    assert np.array_equal(r.zero_cross, lattice.zero_crossings(prev, now))
    assert np.array_equal(r.kept, lattice.kept_cells(prev, now))
    assert set(np.unique(lattice.classify(L1, Linf, L2, d))) == set(range(5))  # every regime occurs


def test_float_numbers_match_the_reference_on_a_walk():
    now, prev, first, back = walk()
    X, Xp, X0, Xk = (lattice.to_float32(b) for b in (now, prev, first, back))
    r = fast.sums(now, prev, first, back)
    np.testing.assert_allclose(r.speed, cooling.speed(Xp, X), rtol=1e-6)
    np.testing.assert_allclose(r.cum, cooling.cumulative_displacement(X0, X), rtol=1e-6)
    assert np.array_equal(r.speed == 0, (X == Xp).all(axis=1))  # zero exactly when no coordinate moved
    assert r.speed[:60].max() == 0 and r.speed[60:].min() > 0
    assert np.array_equal(r.total[0], X.sum(axis=0, dtype=np.float64))  # bf16 values add exactly in float64
    np.testing.assert_allclose(r.d_total[0], (X - Xp).sum(axis=0, dtype=np.float64), rtol=1e-9, atol=1e-12)
    s, n_moving, n_zero = coherence._unit_sum(X - Xp)
    n_mov, n_mov_k = r.moving[0]
    assert (n_mov, len(X) - n_mov) == (n_moving, n_zero) == (len(X) - 60, 60)
    np.testing.assert_allclose(r.unit[0], s, rtol=1e-6, atol=1e-6)  # sums of ~640 unit vectors
    sk, nk, _ = coherence._unit_sum(X - Xk)
    np.testing.assert_allclose(r.unit_k[0], sk, rtol=1e-6, atol=1e-6)
    assert n_mov_k == nk
    got = coherence.from_sums(r.unit[0], n_mov, len(X) - n_mov, r.d_total[0] / len(X))
    want = coherence.coherence(X - Xp)
    assert got["n_zero"] == want["n_zero"] and got["n_moving"] == want["n_moving"]
    np.testing.assert_allclose([got["mean_cos"], got["centroid_cos"]], [want["mean_cos"], want["centroid_cos"]],
                               rtol=1e-6, atol=1e-9)
    c = r.total[0] / len(X)
    assert np.array_equal(r.Xc, X - c.astype(np.float32))
    np.testing.assert_allclose(cloud.radius_of(r.r2), cloud.radius(X, c), rtol=1e-6)


def test_sets_in_a_row_order_equal_each_set_swept_alone():
    """perm/bounds: three sets scattered over the frame give what each set's own rows give."""
    now, prev, first, back = walk(n=700)
    rng = np.random.default_rng(3)
    perm = rng.permutation(700)
    bounds = np.array([0, 250, 253, 700])  # a tiny set in the middle, as the natural dead often are
    r = fast.sums(now, prev, first, back, perm, bounds)
    for j in range(3):
        a, b = bounds[j], bounds[j + 1]
        ids = perm[a:b]
        alone = fast.sums(now[ids], prev[ids], first[ids], back[ids])
        for name in ("speed", "cum", "L1", "Linf", "L2sq", "ulp_max", "zero_cross", "kept", "Xc", "r2"):
            assert np.array_equal(getattr(r, name)[a:b], getattr(alone, name)), name
        for name in ("total", "d_total", "unit", "unit_k", "moving"):
            assert np.array_equal(getattr(r, name)[j], getattr(alone, name)[0]), name
    empty = fast.sums(now, prev, first, back, perm[:10], [0, 0, 10])  # an empty set: zeros, no rows
    assert not empty.total[0].any() and tuple(empty.moving[0]) == (0, 0)
    out = fast.Sums.empty(700, now.shape[1], 3)
    assert fast.sums(now, prev, first, back, perm, bounds, out=out) is out  # reused, not reallocated
    assert np.array_equal(out.speed, r.speed)


def test_without_a_previous_frame_only_frame_sums_are_filled():
    now, prev, first, _ = walk(n=100)
    r = fast.sums(now, None, first)
    assert np.isnan(r.speed).all() and np.isnan(r.ulp_max).all() and not r.moving.any()
    assert not r.unit.any() and not r.L1.any()
    np.testing.assert_allclose(r.cum, cooling.cumulative_displacement(lattice.to_float32(first),
                                                                      lattice.to_float32(now)), rtol=1e-6)
    assert not fast.sums(now).cum.any()  # first defaults to now


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_non_finite_weights_give_nan_or_inf_as_the_reference_does():
    now, prev, first, back = walk(n=64, d=16)
    now[3, 2] = 0x7FC0  # NaN
    now[5, 1] = 0x7F80  # +inf
    X, Xp = lattice.to_float32(now), lattice.to_float32(prev)
    r = fast.sums(now, prev, first, back)
    ref = cooling.speed(Xp, X)
    assert np.isnan(r.speed[3]) and np.isinf(r.speed[5])
    np.testing.assert_allclose(r.speed, ref, rtol=1e-6)
    assert np.array_equal(r.ulp_max, lattice.ulp_displacement(prev, now)[0], equal_nan=True)


def test_bad_frames_are_refused():
    now, prev, _, _ = walk(n=10, d=8)
    with pytest.raises(DucklingError, match="uint16"):
        fast.sums(now.astype(np.float32))
    with pytest.raises(DucklingError, match="prev"):
        fast.sums(now, prev[:5])
    with pytest.raises(DucklingError, match="perm"):
        fast.sums(now, prev, perm=[0, 10])
    with pytest.raises(DucklingError, match="bounds"):
        fast.sums(now, prev, perm=np.arange(10), bounds=[0, 6, 4, 10])
