"""The motion field of a cloud: does it expand, shear or rotate, or do its tokens merely wander?

Between two frames, the displacements D_i = (w_i(t) - w_i(t')) / (t - t') of a set's n rows are fitted
to a linear field about the centroid of the earlier frame, D_i ~ v + A (w_i(t') - c(t')), by least
squares. A's trace is uniform expansion (or contraction), its traceless symmetric part is shear (the
cloud stretched along some axes and squeezed along others), its antisymmetric part rotation (the
cloud turning as a body). A fit to n rows in R^d always finds some A, even for displacements that have
nothing to do with position, so each part is read against its expected size for the same fit on a
random walk whose steps are the set's own displacements, drawn independently of position.
"""
from __future__ import annotations

import math

import numpy as np

PARTS = ("expansion", "shear", "rotation")
RATIO_LEVEL = 2.0  # |part| / baseline at or above which a part is more than a random walk's


def linear_field(X, D) -> np.ndarray:
    """The least-squares linear field A (d, d) of displacements D (n, d) at positions X (n, d):

        A^T = (X_c^T X_c)^(-1) X_c^T D,   X_c = X - c,   c = (1/n) sum_i w_i,

    minimising sum_i |D_i - v - A (w_i - c)|^2; the translation v = mean_i D_i drops out because the
    centred rows sum to zero. float64. NaN when n < d + 1 (X_c^T X_c has rank at most n - 1) or
    X_c^T X_c is singular."""
    X, D = np.asarray(X, dtype=np.float64), np.asarray(D, dtype=np.float64)
    n, d = X.shape
    if n < d + 1:
        return np.full((d, d), np.nan)
    Xc = X - X.mean(axis=0)
    try:
        return np.linalg.solve(Xc.T @ Xc, Xc.T @ D).T
    except np.linalg.LinAlgError:
        return np.full((d, d), np.nan)


def parts(A) -> dict[str, float]:
    """The three parts of a linear field A (d, d):

        expansion = trace(A) / d
        shear = |(A + A^T) / 2 - expansion I|_F,   rotation = |(A - A^T) / 2|_F

    expansion is the relative growth rate of every length (a cloud whose radius grows by a fraction e
    per step has expansion e); shear the size of the traceless symmetric part (stretch along some axes,
    squeeze along others); rotation the size of the antisymmetric part (a rigid turn, in radians per
    step for a turn in one plane: rotation = sqrt(2) times the angular rate). NaN for a NaN field."""
    A = np.asarray(A, dtype=np.float64)
    d = A.shape[0]
    if d == 0 or not np.isfinite(A).all():
        return {p: math.nan for p in PARTS}
    e = float(np.trace(A)) / d
    S = (A + A.T) / 2 - e * np.eye(d)
    return {"expansion": e, "shear": float(np.linalg.norm(S)), "rotation": float(np.linalg.norm((A - A.T) / 2))}


def motion_field(X, D) -> dict:
    """parts(linear_field(X, D)) beside its random-walk baseline, from one Gram matrix.

    The baseline is the same fit on a random walk with the set's own steps: displacements
    v + e_i with the e_i drawn independently of position from the set's centred displacements
    r_i = D_i - mean_j D_j (with replacement: the limit of shuffling the rows). Then A^T = G^-1 X_c^T e
    with G = X_c^T X_c, so E[A_ab A_ce] = S_ac (G^-1)_be with S = (1/n) sum_i r_i r_i^T, and with
    q = <S, G^-1> (the elementwise sum of S * G^-1):

        E[expansion^2] = q / d^2,   E[shear^2] = (trace(S) trace(G^(-1)) + q) / 2 - q / d,
        E[rotation^2] = (trace(S) trace(G^(-1)) - q) / 2

    baseline_p = sqrt(E[p^2]): for shear and rotation (norms, which concentrate) their size under a
    random walk, for expansion (signed, mean 0) its spread; ratio_p = |p| / baseline_p is about 1 for a
    random walk (expansion: |z|, median 0.67). A real field in D also enlarges the r_i, so the baseline
    is that of a random walk of the same speeds. G, X_c^T D and S come from one product Z^T Z,
    Z = [X_c, r] (float64). NaN where the field is (n < d + 1 or G singular).

    Returns dict(expansion, shear, rotation, baseline: {part: value}, ratio: {part: value}, n)."""
    X, D = np.asarray(X, dtype=np.float64), np.asarray(D, dtype=np.float64)
    n, d = X.shape
    nan = {p: math.nan for p in PARTS}
    out = {**nan, "baseline": dict(nan), "ratio": dict(nan), "n": int(n)}
    if n < d + 1:
        return out
    Z = np.concatenate([X - X.mean(axis=0), D - D.mean(axis=0)], axis=1)
    M = Z.T @ Z  # [[G, X_c^T D], [D^T X_c, n S]]: X_c's columns sum to 0, so X_c^T r = X_c^T D
    try:
        Gi = np.linalg.inv(M[:d, :d])
    except np.linalg.LinAlgError:
        return out
    out.update(parts((Gi @ M[:d, d:]).T))
    S = M[d:, d:] / n
    q, tt = float(np.vdot(S, Gi)), float(np.trace(S)) * float(np.trace(Gi))
    expect = {"expansion": q / d ** 2, "shear": (tt + q) / 2 - q / d, "rotation": (tt - q) / 2}
    for p in PARTS:
        b = math.sqrt(max(expect[p], 0.0))
        out["baseline"][p] = b
        out["ratio"][p] = abs(out[p]) / b if b > 0 else math.nan
    return out


def beyond_random(ratios, level: float = RATIO_LEVEL) -> dict:
    """Whether a part of the motion field is more than a random walk's over a run: the median over the
    frame pairs of ratio = |part| / baseline (finite values only), and beyond = median >= level
    (default 2; a random walk gives about 1 for shear and rotation, about 0.67 for expansion, the
    median of |z| for a normal z). NaN median and beyond False when no ratio is finite.

    Returns dict(median_ratio, beyond, n)."""
    r = np.asarray(ratios, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    med = float(np.median(r)) if r.size else math.nan
    return {"median_ratio": med, "beyond": bool(med >= level), "n": int(r.size)}
