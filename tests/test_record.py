"""The Record on synthetic movies with known answers, against a plain reference, and end to end on a smoke run."""
import collections
import inspect
import json
import math
import shutil

import numpy as np
import pytest

from duckling import config, movie, pipeline
from duckling.analyze import fields, parallel, stage
from duckling.errors import DucklingError
from duckling.metrics import cloud, coherence, cooling, lattice


# ---- helpers -------------------------------------------------------------------------------
def bits_of(x) -> np.ndarray:
    """bf16 bits of float32 values that must already lie on the bf16 lattice."""
    x = np.asarray(x, dtype=np.float32)
    b = movie.float32_to_bf16_bits(x)
    assert np.array_equal(lattice.to_float32(b), x), "not exactly bf16"
    return b


def from_ordinals(o) -> np.ndarray:
    """Inverse of lattice.ordinals (0 gives +0)."""
    o = np.asarray(o, dtype=np.int32)
    return np.where(o >= 0, o, 0x8000 | -o).astype(np.uint16)


def make_movie(tmp_path, frames, steps=None, shard_frames=4):
    steps = range(len(frames)) if steps is None else steps
    return movie.write_movie(tmp_path / "movie", [(int(s), f if f.dtype == np.uint16 else bits_of(f))
                                                 for s, f in zip(steps, frames)], shard_frames=shard_frames)


def split(n_rows, phantom, dead):
    """Sets over rows 0..n_rows-1: phantom and natural_dead as given, live the rest."""
    phantom, dead = np.asarray(phantom, np.int64), np.asarray(dead, np.int64)
    live = np.setdiff1d(np.arange(n_rows), np.concatenate([phantom, dead]))
    return {"phantom": phantom, "natural_dead": dead, "live": live}


def column(series, s):
    return lambda m: series[f"{s}/{m}"]


def run(mv, sets, precision="fp32", k=3, n_test_steps=2, workers=2, verify=True):
    return stage.compute(mv, sets, precision, k=k, n_test_steps=n_test_steps, workers=workers, verify=verify)


SETS_48 = split(48, np.arange(32, 48), [3, 7, 11])  # 16 phantom, 3 natural dead, 29 live


# ---- clouds --------------------------------------------------------------------------------
def translation_frames(n_frames=7, n_rows=48, d=16, seed=0):
    """X0 + t v on the 2**-8 grid with |x| < 0.5: every value is exactly bf16."""
    rng = np.random.default_rng(seed)
    X0 = rng.integers(-64, 64, (n_rows, d)) / 256
    v = (np.arange(d) % 5 - 2) / 256
    return [(X0 + t * v).astype(np.float32) for t in range(n_frames)], v


def test_translation_at_constant_velocity(tmp_path):
    frames, v = translation_frames()
    speed = np.linalg.norm(v)
    series, summ = run(make_movie(tmp_path, frames), SETS_48, k=3)
    T = len(frames)
    t = np.arange(T)
    for s in stage.SETS:
        S = column(series, s)
        np.testing.assert_allclose(S("drift"), t * speed, rtol=1e-12, atol=1e-15)
        assert np.isnan(S("velocity")[0])
        np.testing.assert_allclose(S("velocity")[1:], speed, rtol=1e-12)
        np.testing.assert_allclose(S("rms_radius"), S("rms_radius")[0], rtol=1e-6)
        np.testing.assert_allclose(S("median_radius"), S("median_radius")[0], rtol=1e-6)
        np.testing.assert_allclose(S("anisotropy"), S("anisotropy")[0], rtol=1e-6)
        np.testing.assert_allclose(S("effective_dim"), S("effective_dim")[0], rtol=1e-6)
        assert np.all(S("axis_turn")[1:] < 1e-3)
        np.testing.assert_allclose(S("coherence")[1:], 1.0, atol=1e-9)
        np.testing.assert_allclose(S("alignment")[1:], 1.0, atol=1e-9)
        assert np.isnan(S("coherence_k")[:3]).all()
        np.testing.assert_allclose(S("coherence_k")[3:], 1.0, atol=1e-9)
        for q in ("speed_q10", "speed_q50", "speed_q90", "speed_mean"):
            np.testing.assert_allclose(S(q)[1:], speed, rtol=1e-6)
        np.testing.assert_allclose(S("cum_q50"), t * speed, rtol=1e-6)
        assert np.all(S("n_zero")[1:] == 0)
        np.testing.assert_allclose(series[f"{s}/centroid"] - series[f"{s}/centroid"][0], np.outer(t, v), atol=1e-15)
        assert summ["coherence"][s]["interpretation"].startswith("swarm")
        # the path is a straight line: all of it on the first axis of the drift plane
        assert summ["drift_plane"][s]["explained"][0] == pytest.approx(1.0, abs=1e-9)
    assert summ["lifecycle"]["drift_start"] == 1
    assert summ["frames"] == summ["frames_read"] == T


def test_scaling_about_the_centroid(tmp_path):
    """Each set is c +- Y_i pairs, scaled by 2**t: its centroid stays c exactly."""
    rng = np.random.default_rng(1)
    d, sizes = 16, {"phantom": 8, "natural_dead": 3, "live": 12}
    Y = {s: rng.integers(-15, 16, (m, d)) / 256 for s, m in sizes.items()}
    base = np.concatenate([np.concatenate([Y[s], -Y[s]]) for s in sizes])
    bounds = np.cumsum([0] + [2 * m for m in sizes.values()])
    sets = {s: np.arange(bounds[j], bounds[j + 1]) for j, s in enumerate(sizes)}
    frames = [(0.5 + 2.0 ** t * base).astype(np.float32) for t in range(4)]
    series, summ = run(make_movie(tmp_path, frames), sets)
    for s in sizes:
        S = column(series, s)
        assert np.all(S("drift") == 0.0) and np.all(S("velocity")[1:] == 0.0)
        np.testing.assert_allclose(S("rms_radius"), S("rms_radius")[0] * 2.0 ** np.arange(4), rtol=1e-6)
        np.testing.assert_allclose(S("median_radius"), S("median_radius")[0] * 2.0 ** np.arange(4), rtol=1e-6)
        np.testing.assert_allclose(S("anisotropy"), S("anisotropy")[0], rtol=1e-6)
        np.testing.assert_allclose(S("effective_dim"), S("effective_dim")[0], rtol=1e-6)
        assert np.isnan(S("alignment")[1:]).all()  # the centroid did not move: no direction to align with
        r0 = np.linalg.norm(np.concatenate([Y[s], -Y[s]]), axis=1)
        for t in range(4):
            np.testing.assert_allclose(S("cum_q50")[t], (2.0 ** t - 1) * np.quantile(r0, 0.5), rtol=1e-6)
        assert summ["velocity_trend"][s]["trend"] == "constant"
    assert summ["lifecycle"]["drift_start"] is None


def test_independent_random_walks(tmp_path):
    rng = np.random.default_rng(2)
    n_rows, d = 480, 32
    W = rng.standard_normal((n_rows, d)).astype(np.float32)
    frames = []
    for _ in range(12):  # fp32 walk, each frame rounded to bf16 as training records it
        frames.append(movie.float32_to_bf16_bits(W))
        W += rng.standard_normal((n_rows, d)).astype(np.float32) * np.float32(0.05)
    sets = split(n_rows, np.arange(300, 480), np.arange(0, 40))
    series, summ = run(make_movie(tmp_path, frames), sets, k=4)
    for s in stage.SETS:
        n = sets[s].size
        sd = coherence.expected_random(n, d)
        assert np.all(np.abs(series[f"{s}/coherence"][1:]) < 5 * sd)
        assert np.all(np.abs(series[f"{s}/coherence_k"][4:]) < 5 * sd)
        assert np.all(series[f"{s}/n_zero"][1:] == 0)
        assert summ["coherence"][s]["expected_random"] == pytest.approx(sd)
        assert summ["coherence"][s]["interpretation"].startswith("independent")


def stretched(s: float, d: int, axis: int) -> np.ndarray:
    """Points +-s e_axis and +-e_k (k != axis): gyration tensor diag(1, .., s^2, .., 1) / d."""
    E = np.eye(d)
    E[axis] *= s
    return np.concatenate([E, -E])


def test_stretched_cloud_shape_matches_closed_forms(tmp_path):
    d = 16
    stretch = (2.0, 4.0, 8.0)
    frames = []
    for s in stretch:  # live stretched along e_0, phantom along e_3, both about 0.25
        X = np.concatenate([stretched(s, d, 0), stretched(s, d, 3), np.full((3, d), 0.125)]) + 0.25
        frames.append(X.astype(np.float32))
    sets = {"live": np.arange(0, 2 * d), "phantom": np.arange(2 * d, 4 * d), "natural_dead": np.arange(4 * d, 4 * d + 3)}
    series, _ = run(make_movie(tmp_path, frames), sets)
    st = np.array(stretch)
    for name in ("live", "phantom"):
        S = column(series, name)
        np.testing.assert_allclose(S("anisotropy"), d * st**2 / (st**2 + d - 1), rtol=1e-6)
        np.testing.assert_allclose(S("effective_dim"), (st**2 + d - 1) ** 2 / (st**4 + d - 1), rtol=1e-6)
        np.testing.assert_allclose(S("rms_radius"), np.sqrt((st**2 + d - 1) / d), rtol=1e-6)
        np.testing.assert_allclose(S("median_radius"), 1.0, rtol=1e-6)
        assert np.all(S("axis_turn")[1:] < 1e-6)
        assert np.all(S("drift") == 0.0)
    # three identical rows: no spread, no shape, no axis
    assert np.all(series["natural_dead/rms_radius"] == 0.0)
    assert np.isnan(series["natural_dead/anisotropy"]).all() and np.isnan(series["natural_dead/axis_turn"]).all()


# ---- the lattice ---------------------------------------------------------------------------
def test_regime_fractions_and_zero_crossings_are_exact(tmp_path):
    d = 16  # sqrt(d) = 4: the multi-cell / teleporting boundary is an integer
    rng = np.random.default_rng(4)
    mag = rng.uniform(0.1, 1.0, (19, d)) * rng.choice([-1, 1], (19, d))
    b0 = movie.float32_to_bf16_bits(mag.astype(np.float32))
    b0[0, 0], b0[6, 0], b0[18, 0] = 0x0000, 0x8000, 0x0000  # +0, -0, +0
    b0[9, 0] = bits_of([0.5])[0]
    o1 = lattice.ordinals(b0)
    # phantom, rows 0-9: 4 frozen, 3 face-adjacent, 2 neighbour, 1 teleporting
    #   rows 0-3 frozen (row 0: +0 -> -0, the same cell)
    o1[4, 1] += 1                 # one cell: face-adjacent
    o1[5, 2] -= 1
    o1[6, 0] = 1                  # -0 -> the smallest positive subnormal: one cell
    o1[7, :2] += [1, -1]          # neighbour, L1 = 2
    o1[8] += 1                    # neighbour, L1 = 16, Linf = 1
    o1[9, 0] = -o1[9, 0]          # 0.5 -> -0.5: a zero crossing, 32256 cells
    # natural dead, rows 10-14: 2 multi-cell, 2 teleporting, 1 frozen
    o1[10, 3] += 2                # multi-cell, L2 = 2
    o1[11, 3] += 4                # multi-cell, L2 = 4 = sqrt(d) exactly
    o1[12, 3:5] += [4, 1]         # L2 = sqrt(17) > 4: teleporting
    o1[13, 3] -= 5                # teleporting
    # live, rows 15-18: frozen, face-adjacent, neighbour, face-adjacent
    o1[16, 5] += 1
    o1[17, 5:8] -= 1
    o1[18, 0] = -1                # +0 -> the negative smallest subnormal: one cell
    b1 = from_ordinals(o1)
    b1[0, 0] = 0x8000  # -0
    sets = {"phantom": np.arange(0, 10), "natural_dead": np.arange(10, 15), "live": np.arange(15, 19)}
    # and back again: the same cells crossed, so the same regimes
    series, summ = run(make_movie(tmp_path, [b0, b1, b0]), sets, precision="pure-bf16")
    expect = {"phantom": np.array([4, 3, 2, 0, 1]) / 10, "natural_dead": np.array([1, 0, 0, 2, 2]) / 5,
              "live": np.array([1, 2, 1, 0, 0]) / 4}
    for s, e in expect.items():
        assert np.isnan(series[f"{s}/regimes"][0]).all()
        assert np.array_equal(series[f"{s}/regimes"][1], e) and np.array_equal(series[f"{s}/regimes"][2], e)
    assert np.array_equal(series["phantom/zero_cross_frac"][1:], [1 / (10 * d)] * 2)
    assert np.all(series["natural_dead/zero_cross_frac"][1:] == 0) and np.all(series["live/zero_cross_frac"][1:] == 0)
    assert np.array_equal(series["phantom/n_zero"][1:], [4, 4]) and np.array_equal(series["live/n_zero"][1:], [1, 1])


def freezing_frames(n_frames, n_rows, d, frozen_from, seed=5):
    """Every token moves one coordinate by 3 cells per step until its freeze step, then never again.
    frozen_from[i]: the first step at which row i no longer moves."""
    o = lattice.ordinals(movie.float32_to_bf16_bits(
        np.random.default_rng(seed).uniform(0.1, 1.0, (n_rows, d)).astype(np.float32)))
    frames = [from_ordinals(o)]
    for t in range(1, n_frames):
        moving = t < frozen_from
        o[moving, t % d] += 3 if t % 2 else -3
        frames.append(from_ordinals(o))
    return frames


def test_a_movie_that_freezes_is_classic_fimbulwinter(tmp_path):
    n_rows, d, T = 50, 8, 41
    sets = {"phantom": np.arange(0, 20), "natural_dead": np.arange(20, 30), "live": np.arange(30, 50)}
    frozen_from = np.full(n_rows, 20)
    for ids in sets.values():  # 60% of each set freezes at step 10, the rest at step 20
        frozen_from[ids[: len(ids) * 6 // 10]] = 10
    series, summ = run(make_movie(tmp_path, freezing_frames(T, n_rows, d, frozen_from), shard_frames=16), sets,
                       precision="pure-bf16")
    for s in stage.SETS:
        frozen = series[f"{s}/regimes"][1:, 0]
        assert np.array_equal(frozen, np.r_[np.zeros(9), np.full(10, 0.6), np.ones(21)])
        v = summ["fimbulwinter"][s]
        assert v["verdict"] == "classic fimbulwinter" and v["precision"] == "pure-bf16"
        assert v["onset_50"] == 10 and v["onset_99"] == 20
        assert v["window_frames"] == 4 and v["window_start_step"] == 37 and v["min_frozen"] == 1.0
        assert "truly did not move" in v["meaning"]
        assert np.all(series[f"{s}/speed_q90"][20:] == 0) and np.all(series[f"{s}/n_zero"][20:] == len(sets[s]))
    assert summ["lifecycle"]["freeze_start"] == 10


def test_a_movie_jittering_by_one_cell_is_cold_not_frozen(tmp_path):
    n_rows, d, T = 30, 8, 40
    o = lattice.ordinals(movie.float32_to_bf16_bits(
        np.random.default_rng(6).uniform(0.1, 1.0, (n_rows, d)).astype(np.float32)))
    frames = [from_ordinals(o)]
    for t in range(1, T):
        o[:, 0] += 1 if t % 2 else -1  # one cell up, one cell back: face-adjacent forever
        frames.append(from_ordinals(o))
    sets = split(n_rows, np.arange(20, 30), np.arange(0, 5))
    series, summ = run(make_movie(tmp_path, frames, shard_frames=8), sets, precision="fp32")
    for s in stage.SETS:
        assert np.array_equal(series[f"{s}/regimes"][1:], np.tile([0.0, 1.0, 0, 0, 0], (T - 1, 1)))
        v = summ["fimbulwinter"][s]
        assert v["verdict"] == "cold, not frozen"
        assert v["onset_50"] is None and v["onset_99"] is None and v["min_cold"] == 1.0 and v["min_frozen"] == 0.0
        assert "less than one bf16 cell" in v["meaning"]
    assert summ["lifecycle"]["freeze_start"] is None


# ---- steps, sets, edges --------------------------------------------------------------------
def test_record_every_divides_velocities_and_speeds_by_the_gap(tmp_path):
    frames, v = translation_frames(n_frames=11)
    speed = np.linalg.norm(v)
    steps = 5 * np.arange(11)
    series, summ = run(make_movie(tmp_path, frames, steps=steps), SETS_48, n_test_steps=3)
    assert np.array_equal(series["steps"], steps)
    assert set(series["test_steps"]) <= set(steps[1:]) and series["test_steps"].size == 3
    for s in stage.SETS:
        np.testing.assert_allclose(series[f"{s}/velocity"][1:], speed / 5, rtol=1e-12)
        for q in ("speed_q10", "speed_q50", "speed_q90", "speed_mean"):
            np.testing.assert_allclose(series[f"{s}/{q}"][1:], speed / 5, rtol=1e-6)
        np.testing.assert_allclose(series[f"{s}/drift"], np.arange(11) * speed, rtol=1e-12)  # not per step
        np.testing.assert_allclose(series[f"{s}/cum_q50"], np.arange(11) * speed, rtol=1e-6)
    for s in stage.COMPARED:
        sp = series[f"{s}/speeds_at_tests"]
        assert sp.shape == (3, SETS_48[s].size)
        np.testing.assert_allclose(sp, speed / 5, rtol=1e-6)
    assert [t["step"] for t in summ["compare"]["tests"]] == series["test_steps"].tolist()
    assert summ["lifecycle"]["drift_start"] == 5


def test_no_natural_dead_tokens(tmp_path):
    frames, _ = translation_frames()
    sets = split(48, np.arange(32, 48), [])
    series, summ = run(make_movie(tmp_path, frames), sets)
    for key, v in series.items():
        if key.startswith("natural_dead/"):
            assert (v.size == 0 if key.endswith("speeds_at_tests") else np.isnan(v).all()), key
    assert series["natural_dead/speeds_at_tests"].shape == (series["test_steps"].size, 0)
    assert summ["sets"]["natural_dead"] == 0
    assert "natural_dead" not in summ["fimbulwinter"] and "natural_dead" not in summ["coherence"]
    assert "no natural dead tokens" in summ["compare"]["answer"]
    assert math.isnan(summ["compare"]["drift_angle_deg"])
    assert all(t["note"] == "no tests: set b is empty" for t in summ["compare"]["tests"])
    assert np.isfinite(series["phantom/drift"]).all() and np.isfinite(series["live/drift"]).all()
    json.dumps(summ, default=stage._jsonable)


def test_a_single_frame_movie(tmp_path):
    frames, _ = translation_frames(n_frames=1)
    series, summ = run(make_movie(tmp_path, frames), SETS_48)
    assert series["steps"].tolist() == [0] and series["test_steps"].size == 0
    assert series["live/drift"].tolist() == [0.0] and np.isnan(series["live/velocity"]).all()
    assert summ["fimbulwinter"] == {} and "single frame" in summ["compare"]["answer"]


def test_bad_sets_and_precision_are_refused(tmp_path):
    mv = make_movie(tmp_path, translation_frames(n_frames=2)[0])
    with pytest.raises(DucklingError, match="more than one set"):
        run(mv, {"phantom": [1, 2], "natural_dead": [2], "live": [3]})
    with pytest.raises(DucklingError, match="0..47"):
        run(mv, {"phantom": [48], "natural_dead": [], "live": [3]})
    with pytest.raises(DucklingError, match="missing live"):
        run(mv, {"phantom": [1], "natural_dead": []})
    with pytest.raises(DucklingError, match="precision"):
        run(mv, SETS_48, precision="fp16")


def test_a_corrupt_frame_fails_its_checksum_in_the_reader(tmp_path):
    frames, _ = translation_frames(n_frames=9)
    mv = make_movie(tmp_path, frames)
    shard = mv.shards[1]
    with open(shard.path, "r+b") as f:  # flip one byte of the second shard's second frame
        f.seek(shard.data_start + shard.frame_bytes + 100)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))
    with pytest.raises(DucklingError, match="checksum"):
        run(mv, SETS_48)
    series, _ = run(movie.Movie(mv.dir), SETS_48, verify=False)
    assert series["steps"].size == 9


# ---- against a plain reference -------------------------------------------------------------
def reference(mv, sets, k, test_steps):
    """Every series of the Record from the fields' plain references, frame by frame: each metric's
    definition on plain arrays, with no permutation, threads, kernel or float32 Gram: what compute()
    must reproduce. test_steps: the steps of the two-sample tests, worked out by the caller."""
    frames = [b for _, b in mv.frames()]
    steps = mv.steps
    tests = [int(np.searchsorted(steps, t)) for t in test_steps]
    out = {"steps": np.asarray(steps), "test_steps": np.asarray(test_steps)}
    shapes = fields.shapes(mv.d)
    for s, ids in sets.items():
        B = [f[ids] for f in frames]
        X = [lattice.to_float32(b) for b in B]
        S, cents, axes = collections.defaultdict(list), [], []
        for i in range(len(B)):
            v = fields.PlainView(B=B[i], X=X[i], X0=X[0], Bp=B[i - 1] if i else None, Xp=X[i - 1] if i else None,
                                 Xk=X[i - k] if i >= k else None, gap=float(steps[i] - steps[i - 1]) if i else 1.0,
                                 centroids=cents, axes=axes)
            have = {"frame": True, "prev": i > 0, "back": i >= k, "sequence": True}
            for f in fields.PER_FRAME:
                vals = f.plain(v) if have[f.needs] else [np.full(shapes[m], np.nan) for m in f.names]
                for m, x in zip(f.names, vals):
                    S[m].append(x)
            cents.append(S["centroid"][-1])
            axes.append(S["axis"][-1])
            for f in fields.FIELDS:
                if f.needs == "sequence":
                    for m, x in zip(f.names, f.plain(v)):
                        S[m].append(x)
        del S["axis"]
        out.update({f"{s}/{m}": np.array(v, dtype=np.float64) for m, v in S.items()})
        out[f"{s}/path2d"] = cloud.drift_plane(out[f"{s}/centroid"])["xy"]
        if s in stage.COMPARED:
            out[f"{s}/speeds_at_tests"] = np.stack([cooling.speed(X[i - 1], X[i]) / (steps[i] - steps[i - 1])
                                                    for i in tests])
    return out


GYRATION = ("anisotropy", "effective_dim", "axis_turn")
EXACT = ("regimes", "ulp_q50", "ulp_q90", "zero_cross_frac", "n_zero", "centroid", "drift", "path2d", "steps",
         "test_steps")  # bit for bit


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_compute_matches_the_plain_reference(tmp_path, workers):
    rng = np.random.default_rng(7)
    n_rows, d = 300, 16
    W = rng.standard_normal((n_rows, d)).astype(np.float32) * np.float32(0.02)
    frames = []
    for t in range(14):
        frames.append(movie.float32_to_bf16_bits(W))
        W += rng.standard_normal((n_rows, d)).astype(np.float32) * np.float32(3e-4 * 0.7 ** t)
        W[250:] += np.float32(1e-3 * 0.8 ** t)
    ids = rng.permutation(n_rows)
    sets = {"phantom": np.arange(250, 300), "natural_dead": np.sort(ids[ids < 250][:20]),
            "live": np.sort(ids[ids < 250][20:])}
    mv = make_movie(tmp_path, frames, steps=2 * np.arange(14), shard_frames=5)
    series, summ = run(mv, sets, k=3, workers=workers)
    ref = reference(mv, sets, k=3, test_steps=[2, 26])  # 2 steps evenly on a log axis over steps 2..26
    assert sorted(series) == sorted(ref)  # every series the Record stores is checked
    for key, want in ref.items():
        got = series[key]
        m = key.split("/")[-1]
        if m in GYRATION:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3 if "axis_turn" in key else 0, err_msg=key)
        elif m in EXACT:
            assert np.array_equal(got, want, equal_nan=True), key
        else:  # the kernel sums squares in float64, the reference functions in float32
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=key)
    if workers == 2:  # the parallel pass is bit-identical to the serial one
        serial, _ = run(mv, sets, k=3, workers=0)
        for key in serial:
            assert np.array_equal(serial[key], series[key], equal_nan=True), key


# ---- the stage, end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_built(tmp_path_factory):
    """A trained smoke run, built once; tests get their own copy through `smoke`."""
    from conftest import GPT2_DIR  # module scope cannot use the function-scoped gpt2_dir fixture

    if not (GPT2_DIR / "vocab.json").exists():
        pytest.skip("needs ../shared/data/gpt2 (GPT-2 vocab.json and merges.txt)")
    root = tmp_path_factory.mktemp("smoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKLING_ROOT", str(root))
        cfg = config.build("smoke", overrides={"tokenizer_path": str(GPT2_DIR)})
        cfg.save()
        for stage in ("tokenizer", "corpus", "train"):
            pipeline.run_stage(stage, cfg)
    return root


@pytest.fixture
def smoke(smoke_built, root):
    for name in ("data", "movies", "runs"):
        shutil.copytree(smoke_built / name, root / name)
    return config.load("smoke", str(root))


@pytest.fixture
def reads(monkeypatch):
    """Frames read, by index, counted where the movie reads them (random access and the streaming
    reader), and the bytes the streaming reader filled (reads["bytes"])."""
    count = collections.Counter()
    get, read = movie.Movie._get, movie.FrameReader.read

    def counting(self, i, verify):
        count[int(i)] += 1
        return get(self, i, verify)

    def counting_read(self, i, out):
        step = read(self, i, out)
        count[int(i)] += 1
        count["bytes"] += out.nbytes
        return step

    monkeypatch.setattr(movie.Movie, "_get", counting)
    monkeypatch.setattr(movie.FrameReader, "read", counting_read)
    return count


def test_smoke_run_end_to_end(smoke, reads, capsys):
    cfg = smoke
    rec = pipeline.run_stage("analyze", cfg)
    T = cfg.steps // cfg.record_every + 1
    mv = movie.Movie(cfg.movie_dir)
    # the detector, the spectrum and the motion field read their few frames themselves
    again = collections.Counter(mv.index(s) for part, key in (("detector", "steps"), ("spectrum", "frame_steps"),
                                                              ("shear", "frame_steps")) for s in rec[part][key])
    assert reads == {**{i: 1 + again[i] for i in range(T)}, "bytes": T * mv.frame_bytes}  # the pass: once
    series, summary = stage.load(cfg)
    assert series["steps"].tolist() == list(range(T))
    for s in stage.SETS:
        for m in fields.SCALARS:
            assert series[f"{s}/{m}"].shape == (T,), (s, m)
        assert series[f"{s}/regimes"].shape == (T, 5) and series[f"{s}/centroid"].shape == (T, cfg.d_model)
        assert series[f"{s}/path2d"].shape == (T, 2)
    n = summary["sets"]
    assert n["phantom"] == cfg.rows - cfg.live_vocab and sum(n.values()) == cfg.rows
    for s in stage.COMPARED:
        assert series[f"{s}/speeds_at_tests"].shape == (series["test_steps"].size, n[s])
    assert np.isfinite(series["live/drift"]).all() and np.isfinite(series["phantom/rms_radius"]).all()
    np.testing.assert_allclose(series["live/regimes"][1:].sum(1), 1.0)
    for key in ("fingerprint", "run", "config", "precision", "k", "sets", "provenance", "fimbulwinter", "cooling",
                "velocity_trend", "coherence", "drift_plane", "compare", "learning", "lifecycle", "definitions"):
        assert key in summary, key
    assert summary["provenance"]["frames"] == summary["provenance"]["frames_read"] == T
    assert summary["fimbulwinter"]["phantom"]["verdict"] in lattice.VERDICTS
    assert rec["fingerprint"] == summary["fingerprint"]
    assert "analyze: " in capsys.readouterr().out

    reads.clear()
    pipeline.run_stage("analyze", cfg)
    assert not reads and "up to date, skipped" in capsys.readouterr().out
    pipeline.run_stage("analyze", cfg, force=True)
    assert reads == {**{i: 1 + again[i] for i in range(T)}, "bytes": T * mv.frame_bytes}
    assert "analyze" in json.loads((cfg.run_dir / "timings.json").read_text())


def test_missing_movie_or_unfinished_training_name_the_task(smoke):
    cfg = smoke
    (cfg.run_dir / "train.json").rename(cfg.run_dir / "train.json.bak")
    with pytest.raises(DucklingError, match=rf"training of run {cfg.run} has not finished; run `invoke train") as e:
        stage.analyze(cfg, progress=False)
    assert "\n" not in str(e.value)
    (cfg.run_dir / "train.json.bak").rename(cfg.run_dir / "train.json")
    shutil.rmtree(cfg.movie_dir)
    with pytest.raises(DucklingError, match=rf"no movie for run {cfg.run}; run `invoke train") as e:
        stage.analyze(cfg, progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(DucklingError, match="invoke analyze"):
        stage.load(cfg)


def test_worker_count_fits_the_shared_memory(monkeypatch):
    fb = 10_000 * 128 * 2
    monkeypatch.setattr(parallel, "shared_room", lambda: 64 << 20)  # Docker's default /dev/shm
    assert stage._workers(8, 14_270, 10, fb) == 4  # 10 + 2 + 2 * 4 + 2 slots of 2.56 MB fit in 64 MB
    monkeypatch.setattr(parallel, "shared_room", lambda: 30 << 20)
    assert stage._workers(8, 14_270, 10, fb) == 0  # no room for a ring: computed in this process
    monkeypatch.setattr(parallel, "shared_room", lambda: None)
    assert stage._workers(3, 14_270, 10, fb) == 3
    assert stage._workers(None, stage.PROCESS_MIN_FRAMES - 1, 10, fb) == 0  # short movies: one process


def test_the_field_table_defines_every_series_once():
    """Methods prints one definition per series, from duckling.metrics, with its formula."""
    defs = stage.definitions()
    assert sorted(m for e in defs.values() for m in e["series"]) == sorted(fields.SERIES)
    for f in fields.FIELDS:
        assert f.definition.__module__.startswith("duckling.metrics."), f.names
        assert defs[f.definition.__name__]["doc"] == inspect.getdoc(f.definition) != "", f.names
    assert set(fields.SCALARS) | {"centroid", "regimes"} == set(fields.SERIES)
