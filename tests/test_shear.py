"""Shearing: the linear motion field on fields whose answer is built in, its random-walk baseline, and the pass."""
import math
import warnings

import numpy as np
import pytest

from duckling import movie
from duckling.analyze import shear as shear_pass
from duckling.metrics import shear

RNG = np.random.default_rng(7)


def cloud(n=600, d=6, rng=RNG):
    return rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + 3.0  # anisotropic, off the origin


def traceless_symmetric(d, rng=RNG):
    S = rng.normal(size=(d, d))
    S = (S + S.T) / 2
    return S - np.trace(S) / d * np.eye(d)


def antisymmetric(d, rng=RNG):
    R = rng.normal(size=(d, d))
    return (R - R.T) / 2


# ---- the definitions --------------------------------------------------------------------------
def test_the_fit_recovers_a_field_and_ignores_the_translation():
    X = cloud()
    A = RNG.normal(size=(6, 6))
    D = 0.7 + (X - X.mean(0)) @ A.T
    np.testing.assert_allclose(shear.linear_field(X, D), A, atol=1e-10)
    assert np.isnan(shear.linear_field(X[:6], D[:6])).all()  # n < d + 1: no field
    flat = X.copy()
    flat[:, 0] = 1.0  # every row in one hyperplane: X_c^T X_c is singular
    assert np.isnan(shear.linear_field(flat, D)).all()
    few = cloud(n=7)  # n = d + 1: the fewest rows that fix a field, exactly
    np.testing.assert_allclose(shear.linear_field(few, (few - few.mean(0)) @ A.T), A, atol=1e-8)
    assert np.isfinite(shear.motion_field(few, (few - few.mean(0)) @ A.T)["shear"])


def test_the_field_and_its_baseline_ignore_where_the_cloud_is_and_how_it_drifts():
    X = cloud(n=300, d=5)
    D = RNG.normal(size=X.shape) + (X - X.mean(0)) @ (0.2 * antisymmetric(5)).T
    base = shear.motion_field(X, D)
    t = np.arange(5) * 10.0  # a translation of different size along each axis
    for moved in (shear.motion_field(X + t, D), shear.motion_field(X, D + t)):
        for p in shear.PARTS:
            assert moved[p] == pytest.approx(base[p], rel=1e-9), p
            assert moved["baseline"][p] == pytest.approx(base["baseline"][p], rel=1e-9), p


def test_the_parts_by_hand():
    assert shear.parts(0.03 * np.eye(4)) == pytest.approx({"expansion": 0.03, "shear": 0.0, "rotation": 0.0})
    assert shear.parts(np.diag([1.0, -1.0, 0.0])) == pytest.approx(
        {"expansion": 0.0, "shear": math.sqrt(2), "rotation": 0.0})
    w = 0.2  # a turn at w radians per step in one plane
    assert shear.parts(np.array([[0, -w, 0], [w, 0, 0], [0, 0, 0]])) == pytest.approx(
        {"expansion": 0.0, "shear": 0.0, "rotation": math.sqrt(2) * w})
    assert all(math.isnan(v) for v in shear.parts(np.full((3, 3), np.nan)).values())
    assert all(math.isnan(v) for v in shear.parts(np.diag([1.0, np.nan])).values())  # one NaN is no field
    assert all(math.isnan(v) for v in shear.parts(np.zeros((0, 0))).values())
    assert shear.parts([[0.5]]) == {"expansion": 0.5, "shear": 0.0, "rotation": 0.0}  # d = 1: only growth


@pytest.mark.parametrize("kind", ["expansion", "shear", "rotation"])
def test_a_pure_field_is_recovered_and_the_other_two_are_zero(kind):
    X = cloud()
    d = X.shape[1]
    A = {"expansion": 0.02 * np.eye(d), "shear": 0.02 * traceless_symmetric(d),
         "rotation": 0.02 * antisymmetric(d)}[kind]
    noise = RNG.normal(size=X.shape) * 1e-3
    got = shear.motion_field(X, 0.5 + (X - X.mean(0)) @ A.T + noise)
    want = shear.parts(A)
    assert got[kind] == pytest.approx(want[kind], rel=0.05)
    for other in set(shear.PARTS) - {kind}:
        assert abs(got[other]) < 0.1 * abs(want[kind]), other
    # far beyond a random walk of the same speeds (a pure field's ratio is of order sqrt(n / d))
    assert got["ratio"][kind] > 5


def test_a_random_walk_sits_at_its_baseline():
    X = cloud(n=2000, d=8)
    ratios = {p: [] for p in shear.PARTS}
    for _ in range(40):
        D = 0.3 + RNG.normal(size=X.shape) * RNG.uniform(0.1, 1.0, (X.shape[0], 1))  # speeds vary by row
        for p in shear.PARTS:
            ratios[p].append(shear.motion_field(X, D)["ratio"][p])
    for p in ("shear", "rotation"):  # norms of many entries: they concentrate
        assert np.median(ratios[p]) == pytest.approx(1.0, abs=0.1), p
    assert 0.3 < np.median(ratios["expansion"]) < 1.2  # |z| of a normal z has median 0.67
    assert not any(shear.beyond_random(ratios[p])["beyond"] for p in shear.PARTS)


def test_the_closed_form_baseline_is_the_resampled_random_walk():
    """E[p^2] over random walks whose steps are the set's own, drawn with replacement, as the closed form says."""
    X = cloud(n=300, d=5)
    D = RNG.normal(size=X.shape) * RNG.uniform(0.2, 3.0, 5) + (X - X.mean(0)) @ (0.1 * antisymmetric(5)).T
    got = shear.motion_field(X, D)["baseline"]
    sims = [shear.parts(shear.linear_field(X, D[RNG.integers(0, 300, 300)])) for _ in range(3000)]
    for p in shear.PARTS:
        assert got[p] == pytest.approx(math.sqrt(np.mean([s[p] ** 2 for s in sims])), rel=0.06), p


def test_too_few_rows_and_the_median_ratio():
    got = shear.motion_field(cloud(n=6), np.zeros((6, 6)))
    assert got["n"] == 6 and math.isnan(got["shear"]) and math.isnan(got["baseline"]["rotation"])
    assert shear.beyond_random([1.0, 3.0, 2.5, math.nan]) == {"median_ratio": 2.5, "beyond": True, "n": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ratio: NaN, not numpy's mean-of-empty warning
        assert shear.beyond_random([math.nan]) == {"median_ratio": pytest.approx(math.nan, nan_ok=True),
                                                   "beyond": False, "n": 0}
    assert shear.beyond_random([2.0])["beyond"] and not shear.beyond_random([1.99])["beyond"]  # at the level is beyond
    assert shear.beyond_random(np.array([[1.0, 4.0], [5.0, 3.0]], np.float32))["median_ratio"] == 3.5


def test_a_still_cloud_has_no_ratio():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = shear.motion_field(cloud(n=50), np.zeros((50, 6)))
    assert got["shear"] == 0.0 and got["baseline"]["shear"] == 0.0
    assert all(math.isnan(v) for v in got["ratio"].values())


# ---- the pass ---------------------------------------------------------------------------------
def turning_movie(tmp_path, T=30, w=0.05, e=0.01):
    """Frames every 2 steps. Rows 0..399 turn by w radians per frame in the (0, 1) plane; rows 400..799
    grow by a factor 1 + e per frame; rows 800..802 are too few for a field; rows 803..1402 walk at
    random. d = 4, bf16 frames."""
    rng = np.random.default_rng(3)
    W0 = rng.normal(size=(1403, 4)) * [1.0, 1.5, 0.8, 1.2]
    walk = np.cumsum(rng.normal(size=(T, 600, 4)) * 0.02, axis=0)
    frames = []
    for t in range(T):
        c, s = math.cos(w * t), math.sin(w * t)
        W = W0.copy()
        W[:400, :2] = W0[:400, :2] @ np.array([[c, s], [-s, c]])
        W[400:800] *= (1 + e) ** t
        W[803:] += walk[t]
        frames.append((2 * t, W.astype(np.float32)))
    sets = {"phantom": np.arange(400), "live": np.arange(400, 800), "natural_dead": np.arange(800, 803),
            "walk": np.arange(803, 1403)}
    return movie.write_movie(tmp_path / "movie", frames), sets


def test_the_pass_finds_the_turn_the_expansion_and_the_walk(tmp_path):
    mv, sets = turning_movie(tmp_path)
    rec = shear_pass.over_time(mv, sets, n=8)
    assert rec["steps"][-1] == 58 and rec["prev_steps"] == [s - 2 for s in rec["steps"]]
    assert len(rec["frame_steps"]) == len(set(rec["frame_steps"]))  # each frame read once
    assert set(rec["frame_steps"]) == set(rec["steps"]) | set(rec["prev_steps"])
    turn, grow, walk = (rec["sets"][s] for s in ("phantom", "live", "walk"))
    # per step: A = (R(w) - I) / 2 for the turn, e / 2 for the growth (bf16 rounding aside)
    np.testing.assert_allclose(turn["rotation"], math.sqrt(2) * math.sin(0.05) / 2, rtol=0.05)
    np.testing.assert_allclose(grow["expansion"], 0.005, rtol=0.05)
    assert max(turn["shear"]) < 0.1 * min(turn["rotation"]) and max(grow["rotation"]) < 0.1 * 0.005 * 2
    summ = rec["summary"]
    assert summ["phantom"]["rotation"]["beyond"] and not summ["phantom"]["expansion"]["beyond"]
    assert summ["live"]["expansion"]["beyond"] and summ["live"]["expansion"]["median"] > 0
    assert not any(summ["walk"][p]["beyond"] for p in shear.PARTS)
    assert summ["natural_dead"]["shear"]["n"] == 0 and all(math.isnan(v) for v in rec["sets"]["natural_dead"]["shear"])
    assert "The phantom cloud rotates beyond a random walk" in rec["answer"]
    assert "The live cloud expands beyond a random walk" in rec["answer"]
    assert "The natural dead set (3 rows) is too small for a field in R^4 (it needs 5 rows)" in rec["answer"]
    assert "The walk cloud moves as a random walk of the same speeds would" in rec["answer"]


def test_pairs_are_log_spaced_and_end_at_the_last_frame():
    steps = np.arange(0, 2001, 1)
    idx = shear_pass.pair_indices(steps, 16)
    assert idx[0] >= 1 and idx[-1] == 2000 and len(idx) <= 17 and np.all(np.diff(idx) > 0)
    assert np.diff(np.log(steps[idx][-6:])).std() < 0.05  # evenly spaced on a log axis, late on
    assert shear_pass.pair_indices(np.array([0]), 16).size == 0


def test_the_figure_draws_every_part_with_its_baseline(tmp_path):
    from duckling.book import plots

    mv, sets = turning_movie(tmp_path, T=12)
    p = plots.expansion_shear_rotation(shear_pass.over_time(mv, sets, n=4))
    a, b, c = p.fig.axes
    assert [x.get_title() for x in (a, b, c)] == ["Expansion rate", "Shear", "Rotation"]
    assert {ln.get_label() for ln in a.lines} >= {"phantom", "live"} and a.collections  # the baseline band
    assert len(b.lines) == 4 and len(c.lines) == 4  # phantom and live, each with its dotted baseline
    assert "random walk" in p.caption and plots.png(p)[:4] == b"\x89PNG"


def test_the_answer_names_the_parts_beyond_a_random_walk_and_the_sign():
    def summ(median, *beyond):
        out = {p: {"median_ratio": 3.0 if p in beyond else 1.0, "beyond": p in beyond, "n": 5} for p in shear.PARTS}
        out["expansion"]["median"] = median
        return out
    got = shear_pass.answer({"phantom": summ(-1e-4, *shear.PARTS), "live": summ(2e-3, "expansion")},
                            {"phantom": 10, "live": 10, "natural_dead": 0}, 4)
    assert got.startswith("The phantom cloud contracts, shears and rotates beyond a random walk (median ratio to the "
                          "random-walk baseline: expansion 3, shear 3, rotation 3).")
    assert "The live cloud expands beyond a random walk" in got and got.endswith("There are no natural dead tokens.")


def test_the_fit_computes_in_float64_whatever_the_input():
    """Frames are float32: the fit on them is the fit on their values in float64."""
    X = cloud(n=200, d=4).astype(np.float32)
    D = (RNG.normal(size=X.shape) * 0.1).astype(np.float32)
    X64, D64 = X.astype(np.float64), D.astype(np.float64)
    assert np.array_equal(shear.linear_field(X, D), shear.linear_field(X64, D64))
    assert shear.motion_field(X, D) == shear.motion_field(X64, D64)
    A = shear.linear_field(X64, D64).astype(np.float32)
    assert shear.parts(A) == shear.parts(A.astype(np.float64))
    r = np.float32([0.1, 0.2, 3.0, 0.0])
    assert shear.beyond_random(r) == shear.beyond_random(r.astype(np.float64))
