"""Known answers for cloud bulk metrics: translation, scaling, stretching, rotation, trends, drift plane."""
import math

import numpy as np
import pytest

from duckling import movie
from duckling.metrics import cloud, coherence, lattice


def dyadic_cloud(n=400, d=32, seed=0) -> np.ndarray:
    """A float32 cloud on a 2**-10 grid, so translations by dyadic steps are exact."""
    rng = np.random.default_rng(seed)
    return (np.round(rng.standard_normal((n, d)) * 64) / 1024).astype(np.float32)


def stretched(s: float, d: int) -> np.ndarray:
    """Points +-s e_1 and +-e_k (k >= 2): gyration tensor diag(s^2, 1, ..., 1) / d exactly."""
    E = np.eye(d)
    E[0] *= s
    return np.concatenate([E, -E])


def rotation(d: int, theta_deg: float) -> np.ndarray:
    R = np.eye(d)
    t = math.radians(theta_deg)
    R[:2, :2] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
    return R


def test_translation_at_constant_velocity():
    X0 = dyadic_cloud()
    v = (np.arange(X0.shape[1]) % 5 - 2).astype(np.float32) / 256
    c0 = cloud.centroid(X0)
    r0 = cloud.radius(X0, c0)
    e0, a0 = cloud.gyration(X0, c0)
    prev_X, prev_c = X0, c0
    for t in range(1, 6):
        X = X0 + t * v
        c = cloud.centroid(X)
        assert c.dtype == np.float64 and c.shape == (X0.shape[1],)
        assert cloud.drift(c0, c) == pytest.approx(t * np.linalg.norm(v.astype(np.float64)), rel=1e-12)
        assert cloud.velocity(prev_c, c) == pytest.approx(np.linalg.norm(v.astype(np.float64)), rel=1e-12)
        assert cloud.velocity(prev_c, c, dstep=4) == pytest.approx(np.linalg.norm(v.astype(np.float64)) / 4)
        rms, med = cloud.radius(X, c)
        assert rms == pytest.approx(r0[0], rel=1e-6) and med == pytest.approx(r0[1], rel=1e-6)
        e, a = cloud.gyration(X, c)
        np.testing.assert_allclose(e, e0, rtol=1e-9, atol=1e-15)
        assert cloud.axis_turn(a0, a) < 1e-5
        D = X - prev_X
        co = coherence.coherence(D)
        assert co["mean_cos"] == pytest.approx(1.0, abs=1e-6)
        assert co["n_moving"] == X0.shape[0] and co["n_zero"] == 0
        assert co["centroid_cos"] == pytest.approx(1.0, abs=1e-6)
        assert coherence.centroid_alignment(D) == pytest.approx(1.0, abs=1e-6)
        prev_X, prev_c = X, c


def test_scaling_about_the_centroid():
    X0 = dyadic_cloud(seed=1).astype(np.float64)
    c0 = cloud.centroid(X0)
    rms0, med0 = cloud.radius(X0, c0)
    e0, a0 = cloud.gyration(X0, c0)
    for s in (0.5, 2.0, 3.0):
        X = c0 + s * (X0 - c0)
        c = cloud.centroid(X)
        assert cloud.drift(c0, c) < 1e-12
        rms, med = cloud.radius(X, c)
        assert rms == pytest.approx(s * rms0, rel=1e-12) and med == pytest.approx(s * med0, rel=1e-12)
        e, a = cloud.gyration(X, c)
        np.testing.assert_allclose(e, s * s * e0, rtol=1e-9, atol=1e-15)
        assert cloud.shape(e) == pytest.approx(cloud.shape(e0), rel=1e-9)
        assert cloud.axis_turn(a0, a) < 1e-6


def test_radius_known():
    X = np.array([[3.0, 4.0], [-3.0, -4.0], [0.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    rms, med = cloud.radius(X, cloud.centroid(X))
    assert rms == pytest.approx(math.sqrt((25 + 25 + 1 + 1) / 4)) and med == pytest.approx(3.0)


@pytest.mark.parametrize("d", [2, 16, 128])
@pytest.mark.parametrize("s", [1.0, 3.0, 10.0])
def test_stretched_cloud_shape_matches_closed_forms(d, s):
    X = stretched(s, d).astype(np.float32)
    c = cloud.centroid(X)
    e, axis = cloud.gyration(X, c)
    assert e.shape == (d,) and np.all(np.diff(e) <= 1e-15)
    np.testing.assert_allclose(e, np.r_[s * s, np.ones(d - 1)] / d, rtol=1e-6)
    aniso, eff = cloud.shape(e)
    assert aniso == pytest.approx(d * s * s / (s * s + d - 1), rel=1e-6)
    assert eff == pytest.approx((s * s + d - 1) ** 2 / (s ** 4 + d - 1), rel=1e-6)
    if s > 1:
        np.testing.assert_allclose(axis, np.eye(d)[0], atol=1e-9)


def test_shape_extremes():
    assert cloud.shape(np.ones(8)) == pytest.approx((1.0, 8.0))
    assert cloud.shape(np.r_[5.0, np.zeros(7)]) == pytest.approx((8.0, 1.0))
    assert all(math.isnan(x) for x in cloud.shape(np.zeros(4)))


@pytest.mark.parametrize("theta", [0.0, 0.001, 10.0, 45.0, 80.0, 100.0, 170.0, 180.0])
def test_axis_turn_of_a_rotated_cloud(theta):
    d = 16
    X = stretched(4.0, d) @ rotation(d, 30.0).T
    Y = X @ rotation(d, theta).T
    _, a = cloud.gyration(X, cloud.centroid(X))
    _, b = cloud.gyration(Y, cloud.centroid(Y))
    expect = theta if theta <= 90 else 180 - theta
    assert cloud.axis_turn(a, b) == pytest.approx(expect, abs=1e-7)


def test_axis_turn_is_sign_blind():
    e1, e2 = np.eye(3)[0], np.eye(3)[1]
    assert cloud.axis_turn(e1, -e1) == 0.0
    assert cloud.axis_turn(e1, e2) == 90.0
    assert cloud.axis_turn(e1, -(e1 + e2)) == pytest.approx(45.0)
    assert math.isnan(cloud.axis_turn(None, e1)) and math.isnan(cloud.axis_turn(e1, np.zeros(3)))


def test_degenerate_clouds():
    empty = np.zeros((0, 4), dtype=np.float32)
    assert np.isnan(cloud.centroid(empty)).all()
    assert all(math.isnan(x) for x in cloud.radius(empty, np.zeros(4)))
    e, a = cloud.gyration(np.ones((3, 4), np.float32), np.ones(4))
    assert np.all(e == 0) and np.isnan(a).all()


def test_velocity_trend_classifies():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 401) * 10
    noise = np.exp(rng.normal(0, 0.05, steps.size))
    acc = cloud.velocity_trend(steps, 1e-3 * np.exp(steps / 2000) * noise)
    assert acc["trend"] == "accelerating" and acc["p_value"] < 1e-6
    assert acc["slope"] == pytest.approx(1 / 2000, rel=0.05)
    assert acc["start_step"] == 2010 and isinstance(acc["start_step"], int) and acc["n"] == 200
    dec = cloud.velocity_trend(steps, 1e-3 / steps * noise)
    assert dec["trend"] == "decelerating" and dec["ratio"] < 0.6
    const = cloud.velocity_trend(steps, 1e-3 * noise)
    assert const["trend"] == "constant" and abs(math.log(const["ratio"])) < math.log(1.1)


def test_velocity_trend_ignores_zero_and_nan_and_small_windows():
    steps = np.arange(10)
    v = np.array([np.nan, 1, 2, 4, 8, 16, 0.0, np.nan, 128, 256])
    out = cloud.velocity_trend(steps, v)
    assert out["n"] == 3 and out["trend"] == "accelerating" and out["slope"] == pytest.approx(math.log(2))
    assert cloud.velocity_trend(steps, np.zeros(10))["trend"] == "constant"
    assert cloud.velocity_trend([1, 2, 3], [1.0, 2.0, 3.0])["trend"] == "undefined"


def test_drift_plane_of_a_planar_path():
    d, T = 12, 50
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    t = np.arange(T, dtype=np.float64)
    path = np.outer(0.3 * t, q[:, 0]) + np.outer(np.sin(t / 5), q[:, 1])
    C = rng.standard_normal(d) + path
    out = cloud.drift_plane(C)
    xy, axes, share = out["xy"], out["axes"], out["explained"]
    assert xy.shape == (T, 2) and axes.shape == (2, d)
    np.testing.assert_allclose(xy[0], 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(xy, axis=1), np.linalg.norm(C - C[0], axis=1), rtol=1e-9)
    assert share.sum() == pytest.approx(1.0) and xy[-1, 0] > 0
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-12)


def test_drift_plane_of_a_straight_line_and_of_rest():
    d = 5
    v = np.arange(1, d + 1, dtype=np.float64)
    C = np.outer(np.arange(10), v) + 1.0
    out = cloud.drift_plane(C)
    np.testing.assert_allclose(out["xy"][:, 0], np.arange(10) * np.linalg.norm(v), rtol=1e-12)
    np.testing.assert_allclose(out["xy"][:, 1], 0, atol=1e-9)
    assert out["explained"][0] == pytest.approx(1.0)
    rest = cloud.drift_plane(np.ones((4, d)))
    assert np.all(rest["xy"] == 0) and np.isnan(rest["explained"]).all()


def test_float32_gyration_tensor_and_shape_of_match_the_float64_eigen_decomposition():
    """The analyze stage's path (float32 rows centred on the float64 centroid, ssyrk, then
    shape_of's trace / Frobenius / one ssyevr eigenpair, all from the float32 tensor) against
    gyration() + shape() in float64."""
    rng = np.random.default_rng(3)
    for n, scale, shift in [(120, np.ones(128), 0.0), (2000, np.geomspace(1, 1e-3, 128), 0.0),
                            (2000, np.geomspace(3, 0.1, 128), 5.0), (7900, np.r_[10.0, np.full(127, 0.1)], 1.0)]:
        X = (rng.standard_normal((n, 128)) * scale + shift) * 0.02
        X = lattice.to_float32(movie.float32_to_bf16_bits(X.astype(np.float32)))
        c = cloud.centroid(X)
        w64, a64 = cloud.gyration(X, c)
        G = cloud.gyration_tensor(X - c.astype(np.float32))
        assert G.dtype == np.float32 and np.array_equal(G, G.T)
        assert np.max(np.abs(np.linalg.eigvalsh(G.astype(np.float64))[::-1] - w64)) < 1e-6 * w64[0]
        aniso, eff, axis = cloud.shape_of(G)
        np.testing.assert_allclose((aniso, eff), cloud.shape(w64), rtol=1e-6)
        assert cloud.principal(G)[0] == pytest.approx(w64[0], rel=1e-6)
        lam64, axis64 = cloud.principal(G.astype(np.float64))  # dsyevr: the same pair
        assert lam64 == pytest.approx(w64[0], rel=1e-6)
        if w64[0] > 1.5 * w64[1]:  # a well-defined axis, oriented the same way
            assert cloud.angle_between(a64, axis) < 1e-2 and cloud.angle_between(axis64, axis) < 1e-2
    G = cloud.gyration_tensor(np.zeros((0, 4), np.float32))
    assert np.isnan(G).all() and all(np.isnan(v).all() for v in cloud.shape_of(G))
    flat = cloud.gyration_tensor(np.zeros((5, 4), np.float32))  # no spread: no shape, no axis
    assert np.isnan(cloud.shape_of(flat)[0]) and np.isnan(cloud.shape_of(flat)[2]).all()


def test_radius_of_squared_distances():
    assert cloud.radius_of([1.0, 4.0, 4.0, 9.0]) == (math.sqrt(4.5), 2.0)
    assert cloud.radius_of([9.0, 1.0, 4.0]) == (math.sqrt(14 / 3), 2.0)
    assert all(math.isnan(v) for v in cloud.radius_of([]))
    assert math.isnan(cloud.radius_of([1.0, np.nan, 4.0])[1])
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 7880):  # the median is np.median's, bit for bit
        r2 = rng.random(n) ** 4
        assert cloud.radius_of(r2)[1] == float(np.median(np.sqrt(r2)))
