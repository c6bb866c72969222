"""Why they move: the forces logged in training held against the motion the movie shows.

AdamW moves row i of W by dw_i = -lr (a_i + wd w_i), a_i = m_i / (sqrt(v_i) + eps), so the centroid
of a token set S moves by -lr times S's mean Adam direction (weight decay aside), each row at about
lr |a_i|, and a coordinate keeps its bf16 value when |dw| is under half its ULP. These functions
hold each of the three predictions against what the frames show; forces.npy gives the per-step
side (one row per step), the Record's series the per-frame side (one value per frame).
"""
from __future__ import annotations

import math

import numpy as np

from duckling.errors import DucklingError
from duckling.metrics import lattice

TOLERANCE = 0.05  # "within 5% of the schedule"
CLEAR = 0.01  # a step "clear of the lattice": under 1% of the coordinates predicted frozen


def cosine(a, b) -> np.ndarray:
    """Cosine of the angle between vectors, along the last axis:

        cos(a, b) = (a . b) / (|a| |b|)

    float64 of the leading shape; NaN where either vector is zero or not finite (no direction: 0/0 or
    inf/inf, without a warning).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore"):  # a . b is 0 wherever |a| |b| is: 0/0, never x/0
        return (a * b).sum(-1) / (na * nb)


def over_gaps(frame_steps, per_step, how: str = "sum") -> np.ndarray:
    """Per-step values x_k (row k: step k) gathered over the steps between consecutive frames,
    their sum (how: "sum"),

        X_i = sum_{k = s_{i-1} + 1}^{s_i} x_k

    or their mean or minimum (how: "mean" or "min"), for frames at steps s_0 < s_1 < ... < s_{T-1}:
    T - 1 rows, frame i's at i - 1. With a frame every step (s_i = i), X_i is x_i itself.
    """
    s = np.asarray(frame_steps, dtype=np.int64)
    x = np.asarray(per_step, dtype=np.float64)
    if s.size < 2:
        return np.zeros((0, *x.shape[1:]))
    if np.any(np.diff(s) < 1) or s[0] < 0 or s[-1] >= x.shape[0]:
        raise DucklingError(f"frames at steps {s[0]}..{s[-1]} need increasing steps within the "
                            f"{x.shape[0]} per-step rows")
    seg = x[s[0] + 1: s[-1] + 1]
    starts = s[:-1] - s[0]
    if how == "sum":
        return np.add.reduceat(seg, starts, axis=0)
    if how == "mean":
        return np.add.reduceat(seg, starts, axis=0) / np.diff(s).reshape(-1, *([1] * (x.ndim - 1)))
    if how == "min":
        return np.minimum.reduceat(seg, starts, axis=0)
    raise DucklingError(f"over_gaps: how={how!r}; choose sum, mean or min")


def expected_speed(lr, adam_rms, d: int) -> np.ndarray:
    """The speed of a row of S moved by its Adam step alone, per step:

        v(t) = lr(t) * sqrt(d) * RMS(a)

    with RMS(a) = sqrt(mean over S's coordinates of a^2) (forces.npy's adam_rms), so that
    sqrt(d) RMS(a) is the RMS over S's rows of |a_i| and v(t) the RMS of their speeds lr |a_i|.
    """
    return np.asarray(lr, dtype=np.float64) * math.sqrt(d) * np.asarray(adam_rms, dtype=np.float64)


def ratio_spread(ratio, tol: float = TOLERANCE) -> dict:
    """How close observed / expected ratios r_t are to 1, over the finite ones:

        within = mean_t [|r_t - 1| <= tol]

    Returns dict(median, q10, q90, within, n); NaN statistics (n = 0) when none is finite.
    """
    r = np.asarray(ratio, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return {"median": math.nan, "q10": math.nan, "q90": math.nan, "within": math.nan, "n": 0}
    q10, q50, q90 = np.quantile(r, (0.1, 0.5, 0.9))
    return {"median": float(q50), "q10": float(q10), "q90": float(q90),
            "within": float(np.mean(np.abs(r - 1) <= tol)), "n": int(r.size)}


def clear_of_lattice(coord_frozen, level: float = CLEAR) -> np.ndarray:
    """The steps (or frame pairs) whose Adam step is clear of the bf16 lattice, many ULPs long for
    all but a few coordinates: the fraction p of coordinates predicted frozen is small,

        p < 0.01

    (bool, same shape; NaN is not clear). Elsewhere rounding, not the step, sets the movie's speed.
    """
    return np.asarray(coord_frozen, dtype=np.float64) < level


def row_frozen(coord_frozen, d: int) -> np.ndarray:
    """The fraction of S's rows predicted frozen (all d coordinates keep their bf16 value) from the
    fraction p of its coordinates predicted frozen, taking the coordinates of a row as independent:

        P(row frozen) = p ** d

    A row counts as frozen in the movie (L1 = 0) only when every coordinate stayed in its cell, so
    p itself, a coordinate count, overstates the frozen rows whenever 0 < p < 1.
    """
    return np.asarray(coord_frozen, dtype=np.float64) ** d


def medians(steps, x) -> dict:
    """Medians of a per-step (or per-frame) series over the finite values: all of them, the early
    half (steps <= s_max / 2) and the late half (steps > s_max / 2). NaN where a part has none."""
    steps, x = np.asarray(steps), np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        return {"all": math.nan, "early": math.nan, "late": math.nan}
    half = np.nanmax(steps[ok]) / 2
    parts = {"all": ok, "early": ok & (steps <= half), "late": ok & (steps > half)}
    return {k: float(np.median(x[m])) if m.any() else math.nan for k, m in parts.items()}


def onsets(steps, frac) -> dict:
    """The first step from which frac >= 0.5 (onset_50) and frac >= 0.99 (onset_99) hold at every
    later frame through the last (lattice's onsets, as the fimbulwinter verdict reads them; None
    when the last frame is below)."""
    steps, frac = np.asarray(steps), np.asarray(frac)
    if steps.size == 0:
        return {"onset_50": None, "onset_99": None}
    return {"onset_50": lattice._onset(steps, frac, 0.5),
            "onset_99": lattice._onset(steps, frac, lattice.FREEZE_LEVEL)}


def predicted_verdict(steps, predicted_rows, precision: str) -> str:
    """The fimbulwinter verdict the forces predict: "classic fimbulwinter" when the predicted frozen
    rows are >= 0.99 at every frame of the verdict's window (lattice.fimbulwinter_verdict), else
    "not frozen" (the forces say nothing about the cells a moving row crosses, so not which of
    cold or still moving)."""
    p = np.asarray(predicted_rows)
    v = lattice.fimbulwinter_verdict(steps, p, p, precision)["verdict"]
    return v if v == lattice.VERDICTS[0] else "not frozen"


def gap(a, b) -> dict:
    """How far two fraction series lie apart, over the frames where both are finite:

        mean |a - b|,   max |a - b|

    dict(mean_abs, max_abs); NaN when no frame has both."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return {"mean_abs": math.nan, "max_abs": math.nan}
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max())}
