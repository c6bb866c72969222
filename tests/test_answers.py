"""The answer layer of the Record on hand-built series whose answers are worked out here by hand:
the learning answer, phantom vs natural dead, the lifecycle, and the summaries (fimbulwinter,
cooling fit, velocity trend, coherence), with the cases where each answer flips."""
import math
import types

import numpy as np
import pytest

from duckling.analyze import fields, stage
from duckling.errors import DucklingError
from duckling.metrics import compare, cooling, lattice

STEPS = np.arange(17)  # frame 0 is the initialisation; steps 1..16 have speeds


# ---- question 1: does it learn? -------------------------------------------------------------
def learning(tmp_path, val_losses, entropy, bpb=None, final_loss=1.5):
    """_learning on an evals.csv holding val_losses (steps 10, 20, ...) and bits per byte `bpb`."""
    bpb = [v / 2 for v in val_losses] if bpb is None else bpb
    lines = ["step,val_loss,val_bpb"] + [f"{10 * (i + 1)},{v!r},{b!r}" for i, (v, b) in enumerate(zip(val_losses, bpb))]
    (tmp_path / "evals.csv").write_text("\n".join(lines) + "\n")
    cfg = types.SimpleNamespace(run_dir=tmp_path)
    return stage._learning(cfg, {"unigram_entropy_nats": entropy}, {"final_loss": final_loss})


def test_a_loss_below_plateau_and_floor_learns(tmp_path):
    out = learning(tmp_path, [9.0, 2.5, 3.0], entropy=5.0, bpb=[4.0, 1.0, 1.25])
    assert out["learned"] is True
    assert out["final_val_loss"] == 3.0 and out["best_val_loss"] == 2.5 and out["final_val_bpb"] == 1.25
    assert out["unigram_entropy"] == 5.0 and out["plateau"] == 6.75 and out["final_train_loss"] == 1.5
    assert out["answer"] == ("Yes: validation loss 3.000 nats (1.250 bits per byte) is below the old plateau "
                             "6.75 and below the unigram floor 5.000.")


@pytest.mark.parametrize("final, entropy, plateau_word, floor_word", [
    (7.0, 8.0, "above", "below"),   # under the floor but over the old plateau
    (5.5, 5.0, "below", "above"),   # under the plateau but over the floor
    (7.5, 7.0, "above", "above"),
    (6.75, 9.0, "above", "below"),  # on the plateau is not below it
    (4.0, 4.0, "below", "above"),   # on the floor is not below it
])
def test_a_loss_above_either_line_has_not_learned(tmp_path, final, entropy, plateau_word, floor_word):
    out = learning(tmp_path, [9.5, final], entropy=entropy)
    assert out["learned"] is False and out["final_val_loss"] == final and out["best_val_loss"] == final
    assert out["answer"] == (f"Not yet: validation loss {final:.3f} nats ({final / 2:.3f} bits per byte) is "
                             f"{plateau_word} the old plateau 6.75 and {floor_word} the unigram floor {entropy:.3f}.")


def test_no_validation_losses_names_the_task(tmp_path):
    (tmp_path / "evals.csv").write_text("step,val_loss,val_bpb\n")
    with pytest.raises(DucklingError, match="invoke train"):
        stage._learning(types.SimpleNamespace(run_dir=tmp_path), {"unigram_entropy_nats": 1.0}, {})


# ---- question 2: phantom vs natural dead ----------------------------------------------------
def compared(speeds_p, speeds_d, sizes=None, steps=(0, 10, 20, 30)):
    """_compare with test frames 1 and 3; phantom centroid (0,0) -> (5,5) -> (4,4) -> (1,0), drift 1,
    natural dead (0,0) -> (3,-3) -> (1,1) -> (0,2), drift 2: drift directions 90 degrees apart."""
    S = {"phantom/speeds_at_tests": np.asarray(speeds_p, float), "natural_dead/speeds_at_tests": np.asarray(speeds_d, float),
         "phantom/centroid": np.array([[0, 0], [5, 5], [4, 4], [1, 0]], float),
         "natural_dead/centroid": np.array([[0, 0], [3, -3], [1, 1], [0, 2]], float),
         "phantom/drift": np.array([0, 7, 5.7, 1.0]), "natural_dead/drift": np.array([0, 3, 1.4, 2.0])}
    steps = np.asarray(steps)
    idx = np.array([1, 3])[: max(0, steps.size - 1)]
    return stage._compare(S, steps, idx, sizes or {"phantom": 6, "natural_dead": 6})


SAME = np.arange(1.0, 7.0)
FAST = np.arange(11.0, 17.0)  # fully separated from SAME: KS statistic 1, exact p = 2 / C(12, 6) = 1/462


def test_alike_speeds_give_move_alike():
    out = compared([SAME, SAME], [SAME[::-1], SAME])
    assert [t["step"] for t in out["tests"]] == [10, 30]
    assert all(t["ks_stat"] == 0.0 and t["ks_p"] == 1.0 and t["n_a"] == t["n_b"] == 6 for t in out["tests"])
    assert out["drift_angle_deg"] == pytest.approx(90.0)
    assert out["answer"] == ("Phantom and natural dead tokens move alike: speed distributions agree (KS test, "
                             "p > 0.01 at every tested step), their centroids drifted 1 and 2, 90 degrees apart.")


@pytest.mark.parametrize("at", [0, 1])
def test_one_differing_step_gives_move_differently(at):
    dead = [SAME, SAME]
    dead[at] = FAST
    out = compared([SAME, SAME], dead)
    t = out["tests"][at]
    assert t["ks_stat"] == 1.0 and t["ks_p"] == pytest.approx(1 / 462) and t["median_b"] == 13.5
    assert out["tests"][1 - at]["ks_p"] == 1.0
    assert out["answer"] == ("Phantom and natural dead tokens move differently: speed distributions differ (KS "
                             "test, p <= 0.01 at some tested step), their centroids drifted 1 and 2, 90 degrees "
                             "apart.")


@pytest.mark.filterwarnings("error")  # an empty side has no median to take
@pytest.mark.parametrize("side", ["a", "b"])
def test_missing_speeds_are_a_test_with_an_empty_side(side):
    p, d = ([SAME], [SAME, SAME]) if side == "a" else ([SAME, SAME], [SAME])  # none at the second test step
    out = compared(p, d)
    assert out["tests"][1]["note"] == f"no tests: set {side} is empty" and math.isnan(out["tests"][1]["ks_p"])
    assert "move alike" in out["answer"]  # the one finite test agrees


def test_speed_tests_name_the_empty_side():
    notes = [compare.speed_tests(a, b)["note"] for a, b in (([], [1.0]), ([1.0], []), ([], [np.nan]), ([1.0], [2.0]))]
    assert notes == ["no tests: set a is empty", "no tests: set b is empty", "no tests: sets a and b are empty", ""]


def test_two_frames_are_enough_to_compare():
    S = {"phantom/speeds_at_tests": np.array([SAME]), "natural_dead/speeds_at_tests": np.array([FAST]),
         "phantom/centroid": np.array([[0, 0], [2, 2]], float), "natural_dead/centroid": np.array([[1, 1], [1, 3]], float),
         "phantom/drift": np.array([0, math.sqrt(8)]), "natural_dead/drift": np.array([0, 2.0])}
    out = stage._compare(S, np.array([0, 5]), np.array([1]), {"phantom": 6, "natural_dead": 6})
    assert out["tests"][0]["step"] == 5 and out["drift_angle_deg"] == pytest.approx(45.0)
    assert out["answer"].endswith("their centroids drifted 2.83 and 2, 45 degrees apart.")


@pytest.mark.parametrize("sizes, steps, says", [
    ({"phantom": 6, "natural_dead": 0}, (0, 10, 20, 30), "This corpus leaves no natural dead tokens"),
    ({"phantom": 0, "natural_dead": 6}, (0, 10, 20, 30), "This run has no phantom rows"),
    ({"phantom": 6, "natural_dead": 6}, (0,), "The movie has a single frame"),
])
def test_nothing_to_compare(sizes, steps, says):
    out = compared([SAME, SAME], [SAME, SAME], sizes=sizes, steps=steps)
    assert out["answer"].startswith(says)
    assert math.isnan(out["drift_angle_deg"])


# ---- question 3: the lifecycle --------------------------------------------------------------
def test_lifecycle_steps_are_read_off_the_phantom_series():
    steps = np.array([0, 10, 20, 30, 40, 50])
    S = {"phantom/velocity": np.array([np.nan, 0, 0, 0.5, 0.2, 0]),
         "phantom/speed_q50": np.array([np.nan, 1, 3, 2, 0.5, 0.1]),
         "natural_dead/velocity": np.array([np.nan, 1, 1, 1, 1, 1]),
         "natural_dead/speed_q50": np.array([np.nan, 9, 1, 1, 1, 1])}
    out = stage._lifecycle(S, steps, {"phantom": {"onset_50": 40}, "natural_dead": {"onset_50": 10}})
    assert (out["birth"], out["drift_start"], out["cooling_start"], out["freeze_start"]) == (0, 30, 20, 40)
    assert out["sentence"] == ("Born at step 0, the phantom cloud starts drifting at step 30, cools from step 20 "
                               "(its median speed peaks there) and freezes (over half its tokens unchanged in bf16 "
                               "for good) from step 40.")


def test_a_cloud_that_never_moves_or_freezes():
    S = {"phantom/velocity": np.array([np.nan, 0, 0]), "phantom/speed_q50": np.full(3, np.nan)}
    out = stage._lifecycle(S, np.array([0, 1, 2]), {"phantom": {"onset_50": None}})
    assert out["drift_start"] is None and out["cooling_start"] is None and out["freeze_start"] is None
    assert out["sentence"].endswith("does not freeze within the run.")
    assert stage._lifecycle(S, np.array([0, 1, 2]), {})["freeze_start"] is None


# ---- the summaries --------------------------------------------------------------------------
def series(T=STEPS.size, **by_set):
    """A hand-built Record: every series of every set NaN, except those given as {set: {metric: values}}.
    A set's regimes default to all frozen."""
    S = {f"{s}/{m}": np.full(T, np.nan) for s in stage.SETS for m in fields.SCALARS}
    for s in stage.SETS:
        S[f"{s}/regimes"] = np.tile([1.0, 0, 0, 0, 0], (T, 1))
        S[f"{s}/regimes"][0] = np.nan
    for s, metrics in by_set.items():
        S.update({f"{s}/{m}": np.asarray(v, float) for m, v in metrics.items()})
    return S


def summaries(S, sizes=None, d=4, precision="fp32", steps=STEPS):
    return stage._summaries(S, steps, sizes or {"phantom": 10, "natural_dead": 0, "live": 0}, d, precision)


def regimes(*rows):
    """Frames 1.. with these regime fractions (frozen, face_adjacent, neighbour, multi_cell, teleporting)."""
    return np.vstack([np.full(5, np.nan), *rows])


@pytest.mark.parametrize("last, verdict", [
    ([0.995, 0.005, 0, 0, 0], "classic fimbulwinter"),
    ([0.5, 0.3, 0.2, 0, 0], "cold, not frozen"),      # cold counts the neighbours: 0.5 + 0.3 + 0.2
    ([0.5, 0.3, 0.1, 0.1, 0], "still moving"),        # but not the multi-cell jumps
    ([0.98, 0, 0, 0, 0.02], "still moving"),
])
def test_fimbulwinter_verdict_reads_frozen_and_cold_columns(last, verdict):
    # 20 frames after the initialisation: frozen fraction 0.4 through step 12, then `last` (window: 2 frames)
    steps = np.arange(21)
    reg = regimes(*([[0.4, 0.6, 0, 0, 0]] * 12 + [last] * 8))
    out = summaries(series(21, phantom={"regimes": reg}), steps=steps)["fimbulwinter"]["phantom"]
    assert out["verdict"] == verdict and out["precision"] == "fp32"
    assert out["window_frames"] == 2 and out["window_start_step"] == 19
    assert out["min_frozen"] == last[0] and out["min_cold"] == pytest.approx(sum(last[:3]))
    assert out["onset_50"] == (13 if last[0] >= 0.5 else None)
    assert out["onset_99"] == (13 if last[0] >= 0.99 else None)


def test_cooling_fits_the_median_speed_of_the_late_half():
    # each speed series a different power law: the fit must take the median, over steps 4..16
    # (late phase: steps >= sqrt(1 * 16) = 4), and leave out frame 0 (step 0 has no logarithm)
    t = STEPS.astype(float)
    with np.errstate(divide="ignore"):
        q50 = 3.0 * t ** -0.5
        q50[:4] = 1e-9  # a warm-up the late phase must not see
        S = series(phantom={"speed_q10": t ** -1.0, "speed_q50": q50, "speed_q90": t ** -0.25,
                            "speed_mean": t ** -0.75},
                   live={"speed_q50": 2.0 * t ** -0.2})
    out = summaries(S, sizes={"phantom": 10, "natural_dead": 0, "live": 3})["cooling"]
    assert out["phantom"]["slope"] == pytest.approx(-0.5, abs=1e-12)
    assert out["phantom"]["intercept"] == pytest.approx(math.log10(3.0), abs=1e-12)
    assert out["phantom"]["r2"] == pytest.approx(1.0)
    assert out["phantom"]["start_step"] == 4 and out["phantom"]["n"] == 13 and out["phantom"]["dropped"] == 0
    assert out["live"]["slope"] == pytest.approx(-0.2, abs=1e-12)  # each set its own, an empty one none
    assert "natural_dead" not in out


def test_cooling_fit_edges():
    nan = {"slope": math.nan, "intercept": math.nan, "r2": math.nan}
    assert cooling.late_slope([0, 0], [1.0, 1.0]) == pytest.approx({**nan, "start_step": None, "n": 0, "dropped": 0},
                                                                  nan_ok=True)
    # late phase steps >= sqrt(1 * 100) = 10: one point with a logarithm, one zero speed
    assert cooling.late_slope([1, 10, 100], [1.0, 1.0, 0.0]) == pytest.approx(
        {**nan, "start_step": 10, "n": 1, "dropped": 1}, nan_ok=True)
    # log10 speed rises by exactly 1 over the late phase: slope 1, not a flat series
    up = cooling.late_slope([1, 10, 100], [5.0, 10.0, 100.0])
    assert (up["slope"], up["intercept"], up["start_step"], up["n"]) == pytest.approx((1.0, 0.0, 10, 2))
    flat = cooling.late_slope([1, 10, 100, 1000], [2.0] * 4)
    assert flat["slope"] == 0.0 and flat["intercept"] == pytest.approx(math.log10(2.0)) and math.isnan(flat["r2"])
    with pytest.raises(DucklingError, match="one speed per step, got"):
        cooling.late_slope([1, 2], [1.0])


def test_fimbulwinter_thresholds_hold_at_equality():
    assert lattice.fimbulwinter_verdict([5], [0.99], [0.99], "fp32")["verdict"] == "classic fimbulwinter"
    assert lattice.fimbulwinter_verdict([5], [0.5], [0.99], "fp32")["verdict"] == "cold, not frozen"
    with pytest.raises(DucklingError, match="one frozen and one cold fraction per step"):
        lattice.fimbulwinter_verdict([5, 6], [0.5], [0.99], "fp32")


def test_velocity_trend_takes_the_centroid_velocity_from_step_1():
    # v = exp(-0.1 t) over steps 1..16: the window is its last 8 frames, steps 9..16
    v = np.exp(-0.1 * STEPS.astype(float))
    v[0] = np.nan
    out = summaries(series(phantom={"velocity": v}))["velocity_trend"]["phantom"]
    assert out["trend"] == "decelerating" and out["start_step"] == 9 and out["n"] == 8
    assert out["slope"] == pytest.approx(-0.1, abs=1e-12) and out["ratio"] == pytest.approx(math.exp(-0.7))


def coherent(values, n_zero, coherence_k=None, alignment=None):
    T = len(values)
    return series(T, phantom={"coherence": values, "n_zero": n_zero,
                              "coherence_k": coherence_k if coherence_k is not None else np.full(T, np.nan),
                              "alignment": alignment if alignment is not None else np.full(T, np.nan)})


def test_coherence_summary_by_hand():
    # 10 phantoms; moving per frame 10, 10, 7, 1: median 8.5, taken as 8, so sd = sqrt(2 / (8 * 7 * 4)) = 0.0945
    S = coherent([np.nan, 0.9, 0.8, 0.7, 0.6], [np.nan, 0, 0, 3, 9], coherence_k=[np.nan, np.nan, 0.5, 0.4, 0.3],
                 alignment=[np.nan, 1.0, 0.5, 0.5, 0.0])
    out = summaries(S, steps=np.arange(5))["coherence"]["phantom"]
    assert out["mean"] == pytest.approx(0.75) and out["mean_k"] == pytest.approx(0.4)
    assert out["alignment"] == pytest.approx(0.5)
    assert out["expected_random"] == pytest.approx(math.sqrt(2 / 224))
    z = 0.75 / math.sqrt(2 / 224)
    assert out["interpretation"].startswith(f"swarm: mean pairwise cosine 0.75 over 8 moving tokens is +{z:.1f} sd")


@pytest.mark.parametrize("level, label", [(0.45, "partly coherent"), (0.04, "independent"), (-0.6, "anti-aligned")])
def test_coherence_label_flips_with_the_mean(level, label):
    out = summaries(coherent([np.nan, level], [np.nan, 0]), steps=np.arange(2))["coherence"]["phantom"]
    assert out["mean"] == pytest.approx(level) and out["expected_random"] == pytest.approx(math.sqrt(2 / 360))
    assert out["interpretation"].startswith(label + ":")


@pytest.mark.filterwarnings("error")  # no mean is taken of nothing
def test_a_single_frame_has_no_summary_to_give():
    out = summaries(series(1, phantom={"coherence": [0.9], "alignment": [0.9]}), steps=np.arange(1))
    assert out["fimbulwinter"] == {} and math.isnan(out["coherence"]["phantom"]["mean"])
    assert math.isnan(out["coherence"]["phantom"]["alignment"]) and math.isnan(out["cooling"]["phantom"]["slope"])
    assert out["coherence"]["phantom"]["interpretation"] == "undefined: fewer than 2 moving tokens (n=0)"
    assert math.isnan(out["coherence"]["phantom"]["expected_random"])
