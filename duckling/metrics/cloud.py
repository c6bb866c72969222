"""Bulk properties of one token set's cloud w_i(t) in R^d: centroid, drift, velocity, radius, shape, twist.

X is an (n, d) array of the set's rows (float32); centroids and accumulations are float64.
An empty set gives NaN everywhere.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from duckling.errors import DucklingError

TREND_ALPHA = 0.01
TREND_THRESHOLD = 0.1


def centroid(X) -> np.ndarray:
    """c = (1/n) sum_i w_i, float64 (d,)."""
    X = np.asarray(X)
    if X.shape[0] == 0:
        return np.full(X.shape[1], np.nan)
    return X.mean(axis=0, dtype=np.float64)


def _centred(X, c) -> np.ndarray:
    Xc = np.asarray(X).astype(np.float64)
    Xc -= np.asarray(c, dtype=np.float64)
    return Xc


def radius(X, c) -> tuple[float, float]:
    """(RMS distance sqrt((1/n) sum_i |w_i - c|^2), median_i |w_i - c|) as floats."""
    X = np.asarray(X)
    if X.shape[0] == 0:
        return math.nan, math.nan
    Xc = X - np.asarray(c, dtype=np.float64).astype(X.dtype)
    return radius_of(np.einsum("ij,ij->i", Xc, Xc).astype(np.float64))


def radius_of(r2) -> tuple[float, float]:
    """radius() from the squared distances r2_i = |w_i - c|^2: (sqrt(mean r2), median sqrt(r2))."""
    r2 = np.asarray(r2, dtype=np.float64).ravel()
    n = r2.size
    if n == 0:
        return math.nan, math.nan
    # sqrt is monotone: the middle distances are the roots of the middle squares (np.median's mean
    # of the two for even n), from one partial sort
    m = n // 2
    part = np.partition(r2, [m - 1, m, n - 1] if n % 2 == 0 else [m, n - 1])
    if np.isnan(part[-1]):
        return math.nan, math.nan
    med = (math.sqrt(part[m - 1]) + math.sqrt(part[m])) / 2 if n % 2 == 0 else math.sqrt(part[m])
    return math.sqrt(r2.mean()), med


def _oriented(v: np.ndarray) -> np.ndarray:
    """Sign convention for an axis: its largest-magnitude component is positive."""
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def gyration(X, c) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the gyration tensor G = (1/n) sum_i (w_i - c)(w_i - c)^T (float64).

    Returns (eigenvalues (d,) in descending order, principal axis (d,)): the unit eigenvector of the
    largest eigenvalue, oriented so its largest-magnitude component is positive. A cloud with no
    spread (largest eigenvalue 0) has no axis: NaN.
    """
    X = np.asarray(X)
    n, d = X.shape
    if n == 0:
        return np.full(d, np.nan), np.full(d, np.nan)
    Xc = _centred(X, c)
    G = (Xc.T @ Xc) / n
    w = scipy.linalg.eigh(G, eigvals_only=True, driver="evd", check_finite=False)[::-1].copy()
    if not w[0] > 0:
        return w, np.full(d, np.nan)
    return w, _oriented(_top_vector(G, w[0]))


def _top_vector(G: np.ndarray, lam: float) -> np.ndarray:
    """Unit eigenvector of the largest eigenvalue lam of symmetric G: inverse iteration with shift
    lam (1 + 1e-10), three solves from a fixed generic start; LAPACK's dsyevr when the residual
    |G v - lam v| exceeds 1e-9 lam."""
    d = G.shape[0]
    lu = scipy.linalg.lu_factor(G - np.eye(d) * (lam * (1 + 1e-10)), check_finite=False)
    v = _start_vector(d)
    for _ in range(3):
        v = scipy.linalg.lu_solve(lu, v, check_finite=False)
        v /= np.linalg.norm(v)
    if np.linalg.norm(G @ v - lam * v) <= 1e-9 * lam:
        return v
    _, V = scipy.linalg.eigh(G, subset_by_index=[d - 1, d - 1], driver="evr", check_finite=False)
    return V[:, 0]


@functools.lru_cache(maxsize=8)
def _start_vector(d: int) -> np.ndarray:
    v = np.random.default_rng(12345).standard_normal(d)
    v /= np.linalg.norm(v)
    v.flags.writeable = False
    return v


def shape(eigs) -> tuple[float, float]:
    """(anisotropy = l_max / mean(l), effective dimension = (sum l)^2 / sum l^2) of gyration eigenvalues.

    Rounding-level negative eigenvalues are clipped to 0. A sphere in R^d gives (1, d); a line (d, 1).
    NaN for a cloud with no spread.
    """
    lam = np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None)
    s = lam.sum()
    if not s > 0:
        return math.nan, math.nan
    return float(lam.max() / lam.mean()), float(s * s / np.dot(lam, lam))


def gyration_tensor(Xc) -> np.ndarray:
    """G = (1/n) Xc^T Xc from rows already centred, (d, d), summed and returned in Xc's dtype
    (float32 or float64), exactly symmetric. With float32 rows centred on the float64 centroid (the
    analyze stage: BLAS ssyrk, the largest single cost of a frame, half that of float64) the
    eigenvalues of bf16 clouds of 120 to 7,900 rows differ from gyration()'s by < 1e-6 of the
    largest and a well-defined axis by < 0.01 degrees (tests/test_cloud.py)."""
    Xc = np.asarray(Xc)
    if Xc.dtype not in (np.float32, np.float64):
        Xc = Xc.astype(np.float64)
    n, d = Xc.shape
    if n == 0:
        return np.full((d, d), np.nan, Xc.dtype)
    G = Xc.T @ Xc  # numpy calls syrk for a matrix times its own transpose and mirrors the triangle
    G /= G.dtype.type(n)
    return G


def principal(G) -> tuple[float, np.ndarray]:
    """(l_max, axis) of a gyration tensor: its largest eigenvalue and the unit eigenvector, oriented
    as gyration() orients it (NaN axis when l_max <= 0). One eigenpair from LAPACK's ?syevr (range
    'I', il = iu = d) in G's precision (ssyevr for float32, dsyevr otherwise); the axis is float64."""
    G = np.asarray(G)
    single = G.dtype == np.float32
    G = G if single else np.asarray(G, dtype=np.float64)
    d = G.shape[0]
    if d == 0 or not np.isfinite(G).all():
        return math.nan, np.full(d, np.nan)
    syevr = scipy.linalg.lapack.ssyevr if single else scipy.linalg.lapack.dsyevr
    w, z, m, _, info = syevr(G, compute_v=1, range="I", il=d, iu=d, lower=1)
    if info != 0 or m != 1:
        raise DucklingError(f"principal: LAPACK {'s' if single else 'd'}syevr failed (info {info}) on a "
                            f"{d} x {d} matrix")
    lam = float(w[0])
    if not lam > 0:
        return lam, np.full(d, np.nan)
    return lam, _oriented(z[:, 0].astype(np.float64))


def shape_of(G) -> tuple[float, float, np.ndarray]:
    """(anisotropy, effective dimension, principal axis) straight from a gyration tensor, without the
    full eigen-decomposition: for symmetric G, sum l = trace G and sum l^2 = |G|_F^2, so

        anisotropy = l_max / (trace G / d),   effective dimension = (trace G)^2 / |G|_F^2,

    equal to shape(eigenvalues) up to rounding (which clips rounding-level negative eigenvalues),
    with l_max and the axis from principal(G); trace and |G|_F^2 are summed in float64. NaN for a
    cloud with no spread."""
    G = np.asarray(G)
    d = G.shape[0]
    lam, axis = principal(G)
    G64 = G.astype(np.float64)
    tr, fro2 = float(np.trace(G64)), float(np.vdot(G64, G64))
    if not (tr > 0 and lam > 0):
        return math.nan, math.nan, np.full(d, np.nan)
    return lam / (tr / d), tr * tr / fro2, axis


def angle_between(a, b, axial: bool = False):
    """Angle in degrees between two vectors, atan2(|b - (a.b) a|, a.b) for unit a, b (accurate near
    0 and 90): in [0, 180], or in [0, 90] when axial (a and -a are the same axis). NaN for None, zero
    or non-finite vectors. Arrays of vectors (along the last axis) give an array of angles."""
    if a is None or b is None:
        return math.nan
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
        ok = (na > 0) & (nb > 0) & np.isfinite(na) & np.isfinite(nb)
        a, b = a / na[..., None], b / nb[..., None]
        cos = np.sum(a * b, axis=-1)
        sin = np.linalg.norm(b - cos[..., None] * a, axis=-1)
    if axial:
        cos = np.abs(cos)
    out = np.where(ok, np.degrees(np.arctan2(sin, cos)), np.nan)
    return float(out) if out.ndim == 0 else out


def axis_turn(prev_axis, axis):
    """Angle in degrees, in [0, 90], between two principal axes, which are sign-ambiguous:
    atan2(|a x b|, |a . b|). NaN when either axis is None, zero or NaN. Arrays of axes give arrays.
    """
    return angle_between(prev_axis, axis, axial=True)


def drift(c0, c):
    """|c(t) - c(0)| (an array of them for an array of centroids c, along the last axis)."""
    out = np.linalg.norm(np.asarray(c, np.float64) - np.asarray(c0, np.float64), axis=-1)
    return float(out) if out.ndim == 0 else out


def velocity(c_prev, c, dstep=1.0):
    """Centroid velocity per step |c(t) - c(t')| / (t - t'), with dstep = t - t' (frames may skip steps)."""
    return drift(c_prev, c) / dstep


def velocity_trend(steps, velocity, alpha: float = TREND_ALPHA, threshold: float = TREND_THRESHOLD) -> dict:
    """Whether centroid velocity is accelerating, decelerating or constant late in training.

    Window: the last ceil(N / 2) of the N frames given. In it, ln v = a + b * step is fitted by least
    squares (scipy.stats.linregress) over the frames with finite v > 0 (a zero velocity, a centroid
    unchanged in bf16, has no logarithm and is left out; "n" says how many were used).
    ratio = exp(b * (last step - first step)) is the fitted change of velocity across the window.
      accelerating  p < alpha and ratio >= 1 + threshold
      decelerating  p < alpha and ratio <= 1 / (1 + threshold)
      constant      otherwise, or every velocity in the window is exactly 0 (at rest)
      undefined     fewer than 3 positive velocities (not all zero)
    Defaults: alpha = 0.01, threshold = 0.1 (a 10% change across the window).

    Returns dict(trend, slope (of ln v per step), intercept, p_value, r2, ratio, start_step, n,
    alpha, threshold).
    """
    raw = np.asarray(steps)
    steps = raw.astype(np.float64)
    v = np.asarray(velocity, dtype=np.float64)
    if steps.shape != v.shape or steps.ndim != 1:
        raise DucklingError(f"velocity_trend needs one velocity per step, got {steps.shape} and {v.shape}")
    k = -(-steps.size // 2)
    s_w, v_w = steps[steps.size - k:], v[v.size - k:]
    out = {"trend": "undefined", "slope": math.nan, "intercept": math.nan, "p_value": math.nan,
           "r2": math.nan, "ratio": math.nan, "start_step": raw[raw.size - k].item() if k else None, "n": 0,
           "alpha": alpha, "threshold": threshold}
    finite = np.isfinite(v_w)
    use = finite & (v_w > 0)
    out["n"] = int(use.sum())
    if finite.any() and not use.any():
        out.update(trend="constant", slope=0.0, ratio=1.0, p_value=1.0)
        return out
    if out["n"] < 3:
        return out
    x, y = s_w[use], np.log(v_w[use])
    if np.ptp(y) == 0:
        out.update(trend="constant", slope=0.0, intercept=float(y[0]), ratio=1.0, p_value=1.0, r2=0.0)
        return out
    import scipy.stats  # here, not at the top: an analyze worker process never needs it
    fit = scipy.stats.linregress(x, y)
    ratio = math.exp(fit.slope * (x[-1] - x[0]))
    trend = "constant"
    if fit.pvalue < alpha and ratio >= 1 + threshold:
        trend = "accelerating"
    elif fit.pvalue < alpha and ratio <= 1 / (1 + threshold):
        trend = "decelerating"
    out.update(trend=trend, slope=float(fit.slope), intercept=float(fit.intercept),
               p_value=float(fit.pvalue), r2=float(fit.rvalue ** 2), ratio=ratio)
    return out


def drift_plane(centroids) -> dict:
    """The centroid path projected on its two main directions of travel.

    D(t) = c(t) - c(0) for the (T, d) centroids; the axes are the top two eigenvectors of D^T D
    (PCA about the start point, not the path mean, so the path starts at the origin).
    Axis 1 is oriented so the last point has a non-negative coordinate, axis 2 so its
    largest-magnitude coordinate is positive.

    Returns dict(xy (T, 2) float64, axes (2, d), explained (2,): each axis's share of sum_t |D(t)|^2).
    A path that never moves gives xy zeros and NaN axes and shares.
    """
    C = np.asarray(centroids, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] == 0:
        raise DucklingError(f"drift_plane needs a (T, d) array of centroids, got shape {C.shape}")
    D = C - C[0]
    w, V = np.linalg.eigh(D.T @ D)
    w, V = w[::-1][:2], V[:, ::-1][:, :2].T.copy()
    total = float(np.einsum("ij,ij->", D, D))
    if not total > 0:
        return {"xy": np.zeros((C.shape[0], 2)), "axes": np.full((2, C.shape[1]), np.nan),
                "explained": np.full(2, np.nan)}
    xy = D @ V.T
    if xy[-1, 0] < 0:
        xy[:, 0], V[0] = -xy[:, 0], -V[0]
    if xy.shape[1] > 1 and xy[np.argmax(np.abs(xy[:, 1])), 1] < 0:
        xy[:, 1], V[1] = -xy[:, 1], -V[1]
    return {"xy": xy, "axes": V, "explained": np.clip(w, 0, None) / total}
