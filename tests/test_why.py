"""Why they move: the definitions on hand-built arrays, the comparison on a hand-built run, and the
predictions against real pure-bf16 runs through `invoke`."""
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import GPT2_DIR, REPO

from duckling import config
from duckling.analyze import why as A
from duckling.errors import DucklingError
from duckling.metrics import why as W
from duckling.train import forces

INVOKE = str(Path(sys.executable).with_name("invoke"))


# ---- the definitions --------------------------------------------------------------------------
def test_cosine_normalises_keeps_the_sign_and_has_no_direction_for_zero():
    a = np.array([[1.0, 0], [1, 1], [0, 0], [1, 2]])
    b = np.array([[0.0, 1], [2, 2], [1, 0], [-2, -4]])
    c = W.cosine(a, b)
    assert c[:2] == pytest.approx([0.0, 1.0]) and math.isnan(c[2]) and c[3] == pytest.approx(-1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no direction is NaN, quietly
        assert np.isnan(W.cosine([[0.0, 0.0], [np.inf, 1.0]], [[1.0, 0.0], [np.inf, 1.0]])).all()
    stack = np.stack([a, b])  # (2, 4, 2): along the last axis, whatever the leading shape
    assert W.cosine(stack, stack[::-1]).shape == (2, 4)
    np.testing.assert_allclose(W.cosine(stack, stack[::-1])[0], c)


def test_over_gaps_takes_the_steps_after_the_frame_before_through_the_frame():
    x = np.arange(7) * 10.0
    x[0] = np.nan  # row 0 (before any step) never enters a gap
    s = [0, 1, 3, 6]
    assert W.over_gaps(s, x).tolist() == [10, 50, 150]  # 1; 2+3; 4+5+6 (tens)
    assert W.over_gaps(s, x, "mean").tolist() == [10, 25, 50]
    assert W.over_gaps(s, x, "min").tolist() == [10, 20, 40]
    v = np.stack([x, -x], axis=1)
    assert W.over_gaps(s, v).tolist() == [[10, -10], [50, -50], [150, -150]]
    assert W.over_gaps(np.arange(7), x).tolist() == x[1:].tolist()  # a frame every step: x itself
    with pytest.raises(DucklingError, match=r"frames at steps 0\.\.9 need increasing steps within the 7 per-step rows"):
        W.over_gaps([0, 3, 9], x)
    for bad in ([0, 3, 7], [-1, 3], [0, 3, 3, 5]):  # past the rows, before step 0, a repeated step
        with pytest.raises(DucklingError, match="increasing steps"):
            W.over_gaps(bad, x)
    with pytest.raises(DucklingError, match="choose sum, mean or min"):
        W.over_gaps(s, x, "max")
    # frames that neither start at step 0 nor end at the last row: only their own gaps count
    assert W.over_gaps([2, 4, 5], x).tolist() == [70, 50]  # 3+4; 5 (tens)
    assert W.over_gaps([2, 4, 5], x, "mean").tolist() == [35, 50]
    assert W.over_gaps([1, 3], x).tolist() == [50] and W.over_gaps([3], x).shape == (0,)
    assert W.over_gaps([3], v).shape == (0, 2)
    assert W.over_gaps(s, v, "min").tolist() == [[10, -10], [20, -30], [40, -60]]
    assert W.over_gaps(s, v, "mean").tolist() == [[10, -10], [25, -25], [50, -50]]


def test_expected_speed_is_the_rms_row_speed_of_the_adam_step():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])  # rows |a_i| = 5 and 0
    rms = math.sqrt((a ** 2).mean())
    assert W.expected_speed(0.1, rms, 2) == pytest.approx(0.1 * math.sqrt((25 + 0) / 2))


def test_ratio_spread_counts_the_finite_ratios_within_the_tolerance():
    r = W.ratio_spread([1.0, 1.04, 0.94, 2.0, np.nan])
    assert r["n"] == 4 and r["within"] == 0.5 and r["median"] == pytest.approx(1.02)
    assert W.ratio_spread([np.nan])["n"] == 0 and math.isnan(W.ratio_spread([])["median"])
    assert W.ratio_spread([]).keys() == r.keys()
    assert W.ratio_spread([1.5, 0.5, 1.6], tol=0.5)["within"] == pytest.approx(2 / 3)  # |r - 1| <= tol is within
    r = W.ratio_spread(np.arange(11.0))
    assert (r["q10"], r["median"], r["q90"]) == (1.0, 5.0, 9.0)


def test_row_frozen_clear_medians_onsets_gap():
    assert W.row_frozen([0.0, 0.5, 1.0], 3).tolist() == [0.0, 0.125, 1.0]
    assert W.clear_of_lattice([0.0, 0.009, 0.01, np.nan]).tolist() == [True, True, False, False]
    m = W.medians(np.arange(1, 11), np.arange(1, 11.0))
    assert (m["all"], m["early"], m["late"]) == (5.5, 3.0, 8.0)
    o = W.onsets(np.arange(1, 7), [0, 0.6, 0.4, 0.7, 0.995, 1.0])
    assert o == {"onset_50": 4, "onset_99": 5}
    assert W.gap([0.1, 0.5, np.nan], [0.2, 0.1, 0.3]) == pytest.approx({"mean_abs": 0.25, "max_abs": 0.4})


def test_nothing_to_summarise_has_the_same_keys_as_something_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN, not numpy's mean-of-empty warning
        assert W.gap([np.nan], [0.1]).keys() == W.gap([0.2], [0.1]).keys()
        assert all(math.isnan(v) for v in W.gap([], []).values())
        m = W.medians([1, 2], [np.nan, 5.0])  # the early half (steps <= 1) has no finite value
        assert math.isnan(m["early"]) and m["all"] == m["late"] == 5.0
        assert W.medians([], []).keys() == m.keys() and all(math.isnan(v) for v in W.medians([1], [np.nan]).values())
    assert W.onsets([], []) == {"onset_50": None, "onset_99": None}
    assert W.onsets([5], [1.0]) == {"onset_50": 5, "onset_99": 5} and W.onsets([5], [0.6])["onset_99"] is None


def test_the_definitions_compute_in_float64_whatever_the_input():
    """forces.npy is float32: each definition gives on its float32 values what it gives on them in float64."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 50, 128)).astype(np.float32)
    p = np.r_[rng.uniform(0, 1, 49), np.float32(0.01)].astype(np.float32)  # float32(0.01) < 0.01: clear
    r = rng.uniform(0.1, 3.0, 100).astype(np.float32)  # quantiles between values far apart: not exact in float32
    s = np.arange(1, 51)
    pairs = [(W.cosine, (a, b)), (W.over_gaps, (np.r_[0, s], np.r_[np.float32(0), p])),
             (W.expected_speed, (p, p[::-1], 128)), (W.row_frozen, (p, 128)), (W.clear_of_lattice, (p,)),
             (W.ratio_spread, (r,)), (W.medians, (s, p)), (W.gap, (p, p[::-1]))]
    for fn, args in pairs:
        up = tuple(x.astype(np.float64) if isinstance(x, np.ndarray) and x.dtype == np.float32 else x for x in args)
        got, want = fn(*args), fn(*up)
        if isinstance(want, dict):
            assert got == want, fn.__name__
        else:
            assert got.dtype == want.dtype and np.array_equal(got, want), fn.__name__
    assert W.clear_of_lattice(p)[-1]


def test_predicted_verdict_reads_the_verdicts_window():
    steps = np.arange(1, 31)
    frozen = np.r_[np.zeros(27), np.ones(3)]  # the window of 30 frames is the last 3
    assert W.predicted_verdict(steps, frozen, "pure-bf16") == "classic fimbulwinter"
    frozen[-3] = 0.98
    assert W.predicted_verdict(steps, frozen, "pure-bf16") == "not frozen"


# ---- the comparison on a hand-built run -------------------------------------------------------
NAMES = ["phantom", "natural_dead", "seen_1"]
D, STEPS = 4, 8


def _hand_built(every: int = 1):
    """Forces and series of a run whose phantom centroid moves by exactly -lr a each step (a turning
    a quarter each step, away from h), at 1.1 x lr sqrt(d) RMS(a) per row (RMS(a) rising), its coordinates freezing
    by a known schedule, and the natural dead centroid moving the opposite way."""
    F = np.zeros(STEPS + 1, forces.layout(NAMES, D))
    F.view(np.float32)[: F.dtype.itemsize // 4] = np.nan  # row 0, as training writes it
    lr = np.r_[np.nan, np.full(STEPS, 0.01)]
    e = np.eye(D)
    p = np.array([np.nan, 0, 0, 0, 0, 0.5, 0.875, 1.0, 1.0])  # coordinates predicted frozen (exact in float32)
    for k in range(1, STEPS + 1):
        a = e[k % 2] + e[2]  # alternating, so a gap's step is the sum of its steps
        F["adam"][k, :2] = a
        F["grad"][k, :2] = 1e-3 * e[2]
        F["hidden"][k] = e[2]  # -lr a has a -e2 part: away from h
        F["adam_rms"][k] = 0.5 + 0.05 * k
        F["frozen_pred"][k] = p[k]
        F["decay_share"][k] = 0.01
    fs = np.arange(0, STEPS + 1, every)
    disp = -lr[1:, None] * F["adam"][1:, 0].astype(np.float64)
    C = np.vstack([np.zeros(D), np.cumsum(disp, axis=0)])[fs]
    speed = np.r_[np.nan, W.over_gaps(fs, W.expected_speed(lr, F["adam_rms"][:, 0], D), "mean") * 1.1]
    reg = np.zeros((fs.size, 5))
    reg[1:, 0] = W.over_gaps(fs, p, "min") ** D
    series = {"steps": fs, "phantom/centroid": C, "natural_dead/centroid": -C, "phantom/speed_q50": speed,
              "natural_dead/speed_q50": speed, "phantom/regimes": reg, "natural_dead/regimes": reg}
    return F, lr, series


@pytest.mark.parametrize("every", [1, 2])
def test_compare_on_a_hand_built_run(every):
    F, lr, series = _hand_built(every)
    out = A.compare(NAMES, {"phantom": 5, "natural_dead": 3, "seen_1": 2}, F, lr, series, "pure-bf16")
    ph, nd = out["sets"]["phantom"], out["sets"]["natural_dead"]
    assert ph["direction"]["velocity_step"]["all"] == pytest.approx(1.0)  # only the gap's sum lines up
    assert nd["direction"]["velocity_step"]["all"] == pytest.approx(-1.0)
    # -lr (e0 + e2) per step, -lr (e0 + e1 + 2 e2) over a gap of two, against h = e2
    assert ph["direction"]["step_hidden"]["all"] == pytest.approx(-1 / math.sqrt(2) if every == 1 else -2 / math.sqrt(6))
    assert ph["direction"]["grad_hidden"]["all"] == pytest.approx(1.0)
    assert ph["speed"]["median"] == pytest.approx(1.1) and ph["speed"]["within"] == 0.0
    fr = ph["freezing"]
    assert fr["gap"]["max_abs"] == pytest.approx(0.0, abs=1e-12)
    assert fr["predicted_rows"] == fr["observed"] and fr["observed"]["onset_99"] == (7 if every == 1 else 8)
    assert fr["predicted_verdict"] == fr["observed_verdict"] == "classic fimbulwinter"
    assert set(out["forces"]) == set(NAMES) and "seen_1" not in out["sets"]  # no movie series for a bin
    assert out["series"]["steps"].tolist() == series["steps"][1:].tolist()
    text = out["answers"]
    assert "median cosine 1.000" in text["direction"] and "away from the mean hidden state" in text["direction"]
    assert "1.10× lr(t)" in text["speed"] and "not the learning-rate schedule alone" in text["speed"]
    assert f"predicted from the forces: step {fr['observed']['onset_99']:,}" in text["freezing"]


def test_the_speed_answer_tells_the_lattice_apart_from_the_schedule():
    r = {"median": 0.5, "q10": 0.0, "q90": 1.0, "within": 0.4, "n": 10, "last": 0.0,
         "clear": {"median": 1.01, "q10": 1.0, "q90": 1.02, "within": 1.0, "n": 4},
         "adam_rms": {"early": 0.9, "late": 0.5}}
    assert "Clear of the lattice, cooling is the learning-rate schedule" in A._speed("phantom", r, 0.05, True)
    r["clear"]["within"] = 0.4
    assert "not the learning-rate schedule alone" in A._speed("phantom", r, 0.05, True)
    r.update(median=1.0, within=0.9)
    assert A._speed("phantom", r, 0.05, True).endswith("acting through Adam's normalised step.")


def test_a_forces_log_of_another_layout_is_one_line(tmp_path):
    cfg = config.Config(run="x", root=str(tmp_path), max_steps=STEPS, d_model=D)
    assert A.load_forces(cfg, len(NAMES), D) is None  # none logged
    cfg.run_dir.mkdir(parents=True)
    np.save(cfg.run_dir / "forces.npy", np.zeros(STEPS + 1, forces.layout(NAMES[:2], D)))
    with pytest.raises(DucklingError, match=r"forces.npy: not the forces of 3 token sets in R\^4; retrain") as e:
        A.load_forces(cfg, len(NAMES), D)
    assert "\n" not in str(e.value)
    np.save(cfg.run_dir / "forces.npy", np.zeros(STEPS, forces.layout(NAMES, D)))
    with pytest.raises(DucklingError, match=f"8 rows for a run of {STEPS} steps"):
        A.load_forces(cfg, len(NAMES), D)
    (cfg.run_dir / "forces.npy").write_text("not numpy")
    with pytest.raises(DucklingError, match="not a forces log"):
        A.load_forces(cfg, len(NAMES), D)


# ---- the predictions against real runs ----------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two pure-bf16 smoke-size runs of 100 steps through `invoke`: the cosine decays to 0 (min_lr=0),
    or to 1e-3, whose step lr |a| (a few 1e-4) stays above half a ULP of most coordinates."""
    if not (GPT2_DIR / "vocab.json").exists():
        pytest.skip("needs ../shared/data/gpt2 (GPT-2 vocab.json and merges.txt)")
    env = {**os.environ, "DUCKLING_ROOT": str(tmp_path_factory.mktemp("root")), "DUCKLING_GPT2_DIR": str(GPT2_DIR)}
    out = {}
    for run, min_lr in (("cold", "0"), ("warm", "1e-3")):
        for args in (["corpus", "--profile", "smoke", "--run", run, "--set", "precision=pure-bf16", "--set",
                      f"min_lr={min_lr}", "--set", "max_steps=100"], ["train", "--run", run],
                     ["analyze", "--run", run]):
            if args[0] == "corpus" and run == "cold":
                subprocess.run([INVOKE, "tokenizer", "--profile", "smoke"], cwd=REPO, env=env, check=True,
                               capture_output=True, timeout=600)
            r = subprocess.run([INVOKE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
            assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
        out[run] = json.loads((Path(env["DUCKLING_ROOT"]) / "data" / "record" / run / "record.json").read_text())
    return out


@pytest.mark.slow
def test_min_lr_0_ends_in_the_fimbulwinter_the_forces_predict(runs):
    rec = runs["cold"]
    assert rec["fimbulwinter"]["phantom"]["verdict"] == "classic fimbulwinter"
    for S in ("phantom", "natural_dead"):
        fr = rec["why"]["sets"][S]["freezing"]
        assert fr["predicted_verdict"] == fr["observed_verdict"] == "classic fimbulwinter"
        pred, seen = fr["predicted_rows"]["onset_99"], fr["observed"]["onset_99"]
        assert pred is not None and seen is not None and abs(pred - seen) <= 3, fr
        d = rec["why"]["sets"][S]["direction"]
        assert d["velocity_step"]["early"] > 0.99 and d["step_hidden"]["all"] < -0.9 < 0.9 < d["grad_hidden"]["all"]
        clear = rec["why"]["sets"][S]["speed"]["clear"]
        assert abs(clear["median"] - 1) < 0.05, clear


@pytest.mark.slow
def test_min_lr_above_half_a_ulp_does_not_freeze_as_predicted(runs):
    rec = runs["warm"]
    assert rec["fimbulwinter"]["phantom"]["verdict"] in ("cold, not frozen", "still moving")
    fr = rec["why"]["sets"]["phantom"]["freezing"]
    assert fr["predicted_verdict"] == "not frozen" and fr["predicted_rows"]["onset_99"] is None
    assert fr["observed"]["onset_99"] is None
