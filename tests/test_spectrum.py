"""The frequency spectrum: the count sets, each per-set definition, and the pass on a movie whose answer is built in."""
import math
import warnings

import numpy as np
import pytest

from duckling import movie
from duckling.analyze import spectrum as spectrum_pass
from duckling.data import corpus
from duckling.metrics import coherence, spectrum


# ---- the count sets ---------------------------------------------------------------------------
def test_count_sets_bin_a_hand_made_count_vector():
    # ids 0..12 live (12 the separator, seen 50 times: in no set), rows 13..15 phantom
    counts = np.array([0, 1, 2, 3, 4, 10, 11, 100, 101, 1000, 1001, 5000, 50])
    mask = np.zeros(16, bool)
    mask[13:] = True
    got = corpus.count_sets(counts, 12, mask)
    want = {"phantom": [13, 14, 15], "natural_dead": [0], "seen_1": [1], "seen_2-3": [2, 3], "seen_4-10": [4, 5],
            "seen_11-100": [6, 7], "seen_101-1000": [8, 9], "seen_1001+": [10, 11]}
    assert list(got) == list(want)  # rarest first: the forces log and the spectrum read them in this order
    assert {k: v.tolist() for k, v in got.items()} == want
    counts[12] = 0  # a separator that never occurs is not a natural dead token
    assert corpus.count_sets(counts, 12, mask)["natural_dead"].tolist() == [0]


# ---- the definitions --------------------------------------------------------------------------
def test_final_speed_is_per_step_and_frozen_counts_whole_rows():
    Xp = np.zeros((3, 2), np.float32)
    X = np.array([[3, 4], [0, 0], [0, 1]], np.float32)
    assert spectrum.final_speeds(Xp, X, 2.0).tolist() == [2.5, 0.0, 0.5]
    bits = movie.float32_to_bf16_bits(X)
    assert spectrum.frozen_fraction(movie.float32_to_bf16_bits(Xp), bits) == pytest.approx(1 / 3)
    assert spectrum.frozen_fraction(bits, bits) == 1.0
    neg0 = np.full((1, 2), 0x8000, np.uint16)  # -0 is the cell of +0
    assert spectrum.frozen_fraction(np.zeros((1, 2), np.uint16), neg0) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty set is NaN, not numpy's mean-of-empty warning
        assert math.isnan(spectrum.frozen_fraction(np.zeros((0, 2), np.uint16), np.zeros((0, 2), np.uint16)))


def test_swarm_alignment_against_the_dead_drift():
    X0 = np.zeros((4, 3))
    m = np.array([2.0, 0, 0])
    X = np.array([[1, 0, 0], [-3, 0, 0], [0, 5, 0], [0, 0, 0]], float)  # along, against, across, unmoved
    assert spectrum.swarm_alignment(X0, X, m) == pytest.approx(0.0)  # (1 - 1 + 0) / 3: row 3 left out
    assert spectrum.swarm_alignment(X0, X[:1], m) == 1.0 and spectrum.swarm_alignment(X0, X[1:2], m) == -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no drift, no direction: NaN without dividing by zero
        assert math.isnan(spectrum.swarm_alignment(X0, X, np.zeros(3)))
    assert spectrum.swarm_alignment(X0, X[:1], 0.25 * m) == 1.0  # a drift shorter than 1 is a direction too
    assert math.isnan(spectrum.swarm_alignment(X0[:1], X[3:], m))
    # the phantoms against their own drift: coherence.centroid_alignment of the run's displacements
    rng = np.random.default_rng(0)
    A0, A = rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) + 0.5
    assert spectrum.swarm_alignment(A0, A, (A - A0).mean(0)) == pytest.approx(coherence.centroid_alignment(A - A0))


def test_distance_scale_and_the_join():
    assert spectrum.distance_scale(3.0, 1.0, 5.0) == 0.5
    assert spectrum.distance_scale(1.0, 1.0, 5.0) == 0.0 and spectrum.distance_scale(5.0, 1.0, 5.0) == 1.0
    assert math.isnan(spectrum.distance_scale(3.0, 1.0, 1.0))  # the frequent tokens never left
    assert spectrum.join_index([False, True, False, True, True]) == 3  # for good, not the first True
    assert spectrum.join_index([True, True]) == 0
    assert spectrum.join_index([True, False]) is None and spectrum.join_index([]) is None
    assert spectrum.join_index([False, math.nan, True]) == 2
    assert spectrum.join_index([0.0, 1.0, math.nan, 1.0, 1.0]) == 3  # flags as numbers: 1.0 holds, NaN does not


def test_an_empty_set_has_nan_metrics():
    e = np.zeros((0, 4), np.float32)
    b, sp = spectrum.bin_metrics(e, e, e, e.astype(np.uint16), e.astype(np.uint16), 1.0, np.zeros(4), 1.0,
                                 np.ones(4))
    assert b["n"] == 0 and sp.size == 0 and all(math.isnan(v) for k, v in b.items() if k != "n")
    full, _ = spectrum.bin_metrics(*SET, 2.0, np.zeros(4), 1.0, np.ones(4))
    assert b.keys() == full.keys()  # the same columns, empty or not


rng = np.random.default_rng(5)
_X0, _X = rng.normal(size=(2, 30, 4)).astype(np.float32)
_Xp = (_X - rng.normal(size=(30, 4)) * 0.1).astype(np.float32)
SET = (_X0, _Xp, _X, movie.float32_to_bf16_bits(_Xp), movie.float32_to_bf16_bits(_X))


def test_bin_metrics_by_their_definitions():
    c_ph, r_ph, m = np.float32([0.5, -0.25, 0.1, 0.3]), 0.4, np.array([1.0, 0.5, 0, 0])
    b, sp = spectrum.bin_metrics(*SET, 2.0, c_ph, r_ph, m)
    dist = np.linalg.norm(_X.astype(np.float64) - c_ph.astype(np.float64), axis=1)
    cum = np.linalg.norm(_X.astype(np.float64) - _X0, axis=1)
    assert b["n"] == 30 and np.allclose(sp, np.linalg.norm(_X.astype(np.float64) - _Xp, axis=1) / 2.0)
    assert b["dist_phantom"] == pytest.approx(np.median(dist), rel=1e-12)
    assert b["dist_rel"] == pytest.approx(np.median(dist) / r_ph, rel=1e-12)
    assert b["cumulative"] == pytest.approx(np.median(cum), rel=1e-6) and b["final_speed"] == pytest.approx(np.median(sp))
    for k, v in (("speed", sp), ("cumulative", cum), ("dist", dist)):
        assert (b[f"{k}_q10"], b[f"{k}_q90"]) == pytest.approx(tuple(np.quantile(v, (0.1, 0.9))), rel=1e-6), k
    assert b["swarm_cos"] == pytest.approx(spectrum.swarm_alignment(_X0, _X, m))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(spectrum.bin_metrics(*SET, 2.0, c_ph, 0.0, m)[0]["dist_rel"])  # no phantom radius
    # rows are the movie's float32 values: float64 rows give what their float32 rounding gives
    wide = [x.astype(np.float64) * (1 + 1e-9) if x.dtype == np.float32 else x for x in SET]
    assert spectrum.bin_metrics(*wide, 2.0, c_ph, r_ph, m)[0] == b


def test_per_set_definitions_compute_in_float64_whatever_the_input():
    m32 = np.float32([0.3, 0.7, 0.1, 0.9])
    assert spectrum.swarm_alignment(_X0, _X, m32) == spectrum.swarm_alignment(
        _X0.astype(np.float64), _X.astype(np.float64), m32.astype(np.float64))
    c32 = np.float32([0.1, 0.2, 0.3, 0.4])
    assert spectrum.bin_metrics(*SET, 2.0, c32, 1.0, m32)[0] == spectrum.bin_metrics(*SET, 2.0, c32.astype(np.float64), 1.0, m32)[0]


# ---- the pass ---------------------------------------------------------------------------------
def built_movie(tmp_path):
    """Ids 0..5 live (5 the separator), rows 6..9 phantom, d = 4, frames at steps 0, 2, 4.

    phantom: (0, +-1, 0, 0), (0, 0, +-1, 0) translating +e0 at 1 per step (radius 1, centroid t e0);
    natural dead (id 0): still at (0, 0, 0, 3), 5 from the phantom centroid (4, 0, 0, 0) at the end;
    seen once (ids 1, 2): from (12, 0, 0, +-3) moving -e0 at 2 per step, 3 from it at the end;
    seen 1001+ (ids 3, 4): still at (4, 0, 0, +-12), 12 from it."""
    counts = np.array([0, 1, 1, 5000, 5000, 77])
    mask = np.zeros(10, bool)
    mask[6:] = True
    e = np.eye(4, dtype=np.float32)
    frames = []
    for t in (0, 2, 4):
        W = np.zeros((10, 4), np.float32)
        W[0] = 3 * e[3]
        W[1], W[2] = (12 - 2 * t) * e[0] + 3 * e[3], (12 - 2 * t) * e[0] - 3 * e[3]
        W[3], W[4] = 4 * e[0] + 12 * e[3], 4 * e[0] - 12 * e[3]
        W[6:] = np.stack([e[1], -e[1], e[2], -e[2]]) + t * e[0]
        frames.append((t, W))
    return movie.write_movie(tmp_path / "movie", frames), counts, mask


def test_the_spectrum_of_a_built_movie(tmp_path):
    mv, counts, mask = built_movie(tmp_path)
    rec = spectrum_pass.over_run(mv, counts, 5, mask)
    assert rec["frame_steps"] == [0, 2, 4] and rec["gap"] == 2.0
    by = {b["name"]: b for b in rec["bins"]}
    assert [b["name"] for b in rec["bins"]] == list(corpus.count_sets(counts, 5, mask))
    assert by["seen_1"]["counts"] == [1, 1] and by["seen_1001+"]["counts"] == [1001, None]
    assert rec["phantom_rms_radius"] == pytest.approx(1.0)
    want = {  # drift, final speed, cumulative, frozen, swarm cos, distance from the phantom centroid
        "phantom": (4, 1, 4, 0, 1, 1), "natural_dead": (0, 0, 0, 1, math.nan, 5),
        "seen_1": (8, 2, 8, 0, -1, 3), "seen_1001+": (0, 0, 0, 1, math.nan, 12)}
    keys = ("drift", "final_speed", "cumulative", "frozen", "swarm_cos", "dist_phantom")
    for name, values in want.items():
        got = [by[name][k] for k in keys]
        np.testing.assert_allclose(got, values, atol=1e-12, err_msg=name)
        assert by[name]["dist_rel"] == pytest.approx(values[-1])  # the phantom radius is 1
    assert by["seen_2-3"]["n"] == 0 and math.isnan(by["seen_2-3"]["drift"])
    # the scale runs from the phantoms' own distance (1) to the frequent tokens' (12)
    assert by["natural_dead"]["scale"] == pytest.approx(4 / 11) and by["seen_1"]["scale"] == pytest.approx(2 / 11)
    assert rec["joins"]["distance"] == "seen_1001+"
    t = by["natural_dead"]["tests"]
    assert (t["n_a"], t["n_b"], t["median_a"], t["median_b"]) == (4, 1, 1.0, 0.0) and by["phantom"]["tests"] is None
    assert "once seen 1,001+ times" in rec["answer"]
    assert "The tokens seen once, 2 of them, behave like dead ones: 0.18 of the way" in rec["rare"]


@pytest.mark.parametrize("scale, p, how", [(0.1, 0.5, "behave like dead ones"), (0.9, 1e-9, "behave like live ones"),
                                           (0.1, 1e-9, "sit with the dead but move differently"),
                                           (0.9, 0.5, "have left the dead cloud but move like it"),
                                           (math.nan, 0.5, "have left the dead cloud but move like it")])
def test_rare_tokens_are_told_dead_or_live_by_distance_and_speed(scale, p, how):
    def b(name, lo, hi, **kw):
        return {"name": name, "counts": [lo, hi], "n": 3, "final_speed": 1.0, "scale": 0.0,
                "tests": {"ks_p": 0.5}, **kw}
    out = {"bins": [b("phantom", None, None, tests=None), b("seen_1", 1, 1, scale=scale, tests={"ks_p": p}),
                    b("seen_1001+", 1001, None, scale=1.0)], "reference": {"live_bin": "seen_1001+"}}
    assert spectrum_pass._rare(out).startswith(f"The tokens seen once, 3 of them, {how}:")


def test_a_single_frame_has_no_spectrum(tmp_path):
    mv = movie.write_movie(tmp_path / "m", [(0, np.zeros((10, 4), np.float32))])
    rec = spectrum_pass.over_run(mv, np.array([0, 1, 1, 5000, 5000, 77]), 5, np.arange(10) >= 6)
    assert rec["bins"] == [] and "single frame" in rec["answer"]


def test_the_figure_draws_the_record_and_an_empty_one(tmp_path):
    from duckling.book import plots

    mv, counts, mask = built_movie(tmp_path)
    p = plots.by_train_count(spectrum_pass.over_run(mv, counts, 5, mask))
    drawn = [a for a in p.fig.axes if a.has_data()]
    assert len(drawn) == 6 and all(a.get_ylabel() for a in drawn) and "dotted line" in p.caption
    assert [t.get_text() for t in p.fig.axes[3].get_xticklabels()] == ["phantom", "0", "1", "1,001+"]
    empty = plots.by_train_count({"bins": [], "answer": "The movie has a single frame."})
    assert not any(a.has_data() for a in empty.fig.axes) and "single frame" in empty.caption
    assert plots.png(p)[:4] == b"\x89PNG"
