"""Phantom vs natural dead: two-sample tests on speeds, and the angle between the clouds' drifts."""
from __future__ import annotations

import math

import numpy as np

from duckling.metrics.cloud import angle_between


def speed_tests(speed_a, speed_b) -> dict:
    """Two-sided two-sample tests of speed distributions a (e.g. phantom) vs b (e.g. natural dead).

    Kolmogorov-Smirnov (scipy.stats.ks_2samp): ks_stat = sup_x |F_a(x) - F_b(x)|, ks_p.
    Mann-Whitney U (scipy.stats.mannwhitneyu): mw_u = U of sample a, mw_p, and
    mw_auc = U / (n_a n_b) = P(a > b) + P(a = b) / 2 (0.5 when neither is faster).
    Non-finite speeds are left out. bf16 speeds are quantised, so ties are common: both tests
    handle them (the KS p-value is then conservative). With an empty side every statistic is NaN
    and "note" says which side is empty; otherwise note is "".

    Returns dict(ks_stat, ks_p, mw_u, mw_p, mw_auc, n_a, n_b, median_a, median_b, note).
    """
    a = np.asarray(speed_a, dtype=np.float64).ravel()
    b = np.asarray(speed_b, dtype=np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {"ks_stat": math.nan, "ks_p": math.nan, "mw_u": math.nan, "mw_p": math.nan, "mw_auc": math.nan,
           "n_a": int(a.size), "n_b": int(b.size),
           "median_a": float(np.median(a)) if a.size else math.nan,
           "median_b": float(np.median(b)) if b.size else math.nan, "note": ""}
    empty = [name for name, x in (("a", a), ("b", b)) if x.size == 0]
    if empty:
        out["note"] = "no tests: " + ("set a is empty", "set b is empty", "sets a and b are empty")[
            2 if len(empty) == 2 else "ab".index(empty[0])]
        return out
    import scipy.stats  # here, not at the top: an analyze worker process never needs it
    ks = scipy.stats.ks_2samp(a, b)
    mw = scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
    out.update(ks_stat=float(ks.statistic), ks_p=float(ks.pvalue), mw_u=float(mw.statistic),
               mw_p=float(mw.pvalue), mw_auc=float(mw.statistic) / (a.size * b.size))
    return out


def drift_angle(c_a0, c_a, c_b0, c_b) -> float:
    """Angle in degrees, in [0, 180], between the drift directions c_a - c_a0 and c_b - c_b0:
    atan2(|a x b|, a . b). NaN when either drift is zero.
    """
    da = np.asarray(c_a, np.float64) - np.asarray(c_a0, np.float64)
    db = np.asarray(c_b, np.float64) - np.asarray(c_b0, np.float64)
    return angle_between(da, db, axial=False)
