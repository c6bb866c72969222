"""The cooling curve: per-token speed |dW_i|, its quantiles against step, and the late-phase power law."""
from __future__ import annotations

import functools
import math

import numpy as np

from duckling.errors import DucklingError

QUANTILES = (0.1, 0.5, 0.9)


def row_norms(A) -> np.ndarray:
    """|A_i| per row, float64 (n,). Squares are summed in A's dtype; rows whose sum of squares could
    have under- or overflowed there (outside [1e-30, 1e30]) and that are not exactly zero are summed
    again in float64, so a row is 0 exactly when all its entries are 0."""
    A = np.asarray(A)
    n2 = np.einsum("ij,ij->i", A, A).astype(np.float64)
    suspect = np.flatnonzero(~((n2 >= 1e-30) & (n2 <= 1e30)))
    if suspect.size:
        R = A[suspect]
        nonzero = R.any(axis=1)
        if nonzero.any():
            R = R[nonzero].astype(np.float64)
            n2[suspect[nonzero]] = np.einsum("ij,ij->i", R, R)
    return np.sqrt(n2)


def speed(X_prev, X_now) -> np.ndarray:
    """speed_i = |dW_i| = |w_i(t) - w_i(t-1)| per token, float64 (n,)."""
    return row_norms(np.asarray(X_now) - np.asarray(X_prev))


def cumulative_displacement(X0, X) -> np.ndarray:
    """|w_i(t) - w_i(0)| per token, float64 (n,)."""
    return row_norms(np.asarray(X) - np.asarray(X0))


def quantiles(x, qs, overwrite: bool = False) -> np.ndarray:
    """np.quantile(x, qs) (its default 'linear' method: position h = (n - 1) q between the order
    statistics x_(floor h) and x_(floor h + 1)) bit for bit, from one partial sort: a fraction of its
    overhead on the analyze stage's per-frame arrays. NaN if x holds a NaN or is empty.
    overwrite: partially sort a float64 x in place instead of a copy."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return np.full(len(qs), np.nan)
    lo, hi, t, kth = _positions(n, tuple(float(q) for q in qs))
    if overwrite:
        x.partition(kth)
        part = x
    else:
        part = np.partition(x, kth)
    if np.isnan(part[-1]):  # NaNs sort last
        return np.full(lo.shape, np.nan)
    a, b = part[lo], part[hi]
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as np.quantile gives
        diff = b - a
        out = a + diff * t
        np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)  # numpy's lerp, exact at both ends
    return out


@functools.lru_cache(maxsize=64)
def _positions(n: int, qs: tuple) -> tuple:
    h = (n - 1) * np.asarray(qs, dtype=np.float64)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    out = lo, hi, h - lo, np.unique(np.concatenate([lo, hi, [n - 1]]))
    for a in out:
        a.flags.writeable = False  # shared by every call with this n
    return out


def late_slope(steps, speed_q) -> dict:
    """Power-law exponent of one speed quantile in the late phase: least squares of
    log10(speed) = intercept + slope * log10(step).

    Late phase: the right half of the log-step axis, steps >= sqrt(s_lo * s_hi) with s_lo the
    smallest positive step given and s_hi the largest. Frames at step <= 0 and non-positive or
    non-finite speeds have no logarithm and are left out ("dropped" counts those inside the late
    phase; a zero quantile means that share of tokens did not move at all). Needs 2 points at distinct
    steps, else NaN; a flat series gives slope 0 and r2 NaN.

    Returns dict(slope, intercept, r2, start_step, n, dropped).
    """
    raw = np.asarray(steps)
    s = raw.astype(np.float64)
    q = np.asarray(speed_q, dtype=np.float64)
    if s.shape != q.shape or s.ndim != 1:
        raise DucklingError(f"late_slope needs one speed per step, got {s.shape} and {q.shape}")
    out = {"slope": math.nan, "intercept": math.nan, "r2": math.nan, "start_step": None, "n": 0, "dropped": 0}
    pos = s > 0
    if not pos.any():
        return out
    start = math.sqrt(s[pos].min() * s[pos].max())
    late = s >= start * (1 - 1e-12)
    good = late & np.isfinite(q) & (q > 0)
    out["start_step"] = raw[late].min().item()
    out["n"], out["dropped"] = int(good.sum()), int(late.sum() - good.sum())
    if out["n"] < 2:
        return out
    x, y = np.log10(s[good]), np.log10(q[good])
    if np.ptp(x) == 0:
        return out
    if np.ptp(y) == 0:
        out.update(slope=0.0, intercept=float(y[0]))
        return out
    import scipy.stats  # here, not at the top: an analyze worker process never needs it
    fit = scipy.stats.linregress(x, y)
    out.update(slope=float(fit.slope), intercept=float(fit.intercept), r2=float(fit.rvalue ** 2))
    return out
