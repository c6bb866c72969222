"""Coherence: do a set's tokens move in the same direction (a swarm) or independently?

D is the (n, d) array of displacements dW_i = w_i(t) - w_i(t-1) of one token set, or over a window
of k steps, w_i(t) - w_i(t-k), since single-step bf16 differences are quantised.
"""
from __future__ import annotations

import math

import numpy as np

from duckling.metrics.cooling import row_norms

Z_LEVEL = 5.0
SWARM_COS = 0.5


def _unit_sum(D, norms=None) -> tuple[np.ndarray, int, int]:
    """(s = sum_i u_i in float64 over the moving tokens, n_moving, n_zero), u_i = D_i / |D_i|."""
    norms = row_norms(D) if norms is None else np.asarray(norms, dtype=np.float64)
    moving = norms > 0
    inv = np.zeros(norms.shape, dtype=np.float64)
    np.divide(1.0, norms, out=inv, where=moving)
    s = np.einsum("i,ij->j", inv, D, dtype=np.float64)
    n_moving = int(np.count_nonzero(moving))
    return s, n_moving, norms.size - n_moving


def _alignment(s: np.ndarray, n: int, m) -> float:
    if n == 0 or m is None:
        return math.nan
    nm = float(np.linalg.norm(m))
    if not nm > 0:
        return math.nan
    return float(np.dot(s, m)) / (n * nm)


def coherence(D, norms=None) -> dict:
    """Mean pairwise cosine of the displacements over pairs i != j of the moving tokens, in O(n d):

        mean_cos = (|sum_i u_i|^2 - n) / (n (n - 1)),   u_i = D_i / |D_i|,  n = n_moving,

    since |sum u_i|^2 = n + sum_{i != j} u_i . u_j. Tokens with D_i = 0 are counted apart (n_zero);
    the unit-vector sum is accumulated in float64. mean_cos is NaN when fewer than 2 tokens move.
    norms: the |D_i| if already known (e.g. cooling.speed), else computed.

    Returns dict(mean_cos: float, n_moving: int, n_zero: int, centroid_cos: float), centroid_cos
    being centroid_alignment(D), which shares the unit-vector sum.
    """
    D = np.asarray(D)
    s, n, n_zero = _unit_sum(D, norms)
    return from_sums(s, n, n_zero, D.mean(axis=0, dtype=np.float64) if D.shape[0] else None)


def from_sums(s, n_moving: int, n_zero: int, m=None) -> dict:
    """coherence() from its sums: s = sum_i u_i over the n_moving moving tokens (float64 (d,)),
    n_zero the tokens that did not move, m the mean displacement (1/n) sum_i D_i (None: no
    centroid_cos). The same formulas; for callers that accumulate s while reading the rows."""
    s, n = np.asarray(s, dtype=np.float64), int(n_moving)
    mean_cos = (float(np.dot(s, s)) - n) / (n * (n - 1)) if n >= 2 else math.nan
    return {"mean_cos": mean_cos, "n_moving": n, "n_zero": int(n_zero), "centroid_cos": _alignment(s, n, m)}


def centroid_alignment(D, norms=None) -> float:
    """Mean cosine between each moving token's displacement and the centroid's displacement
    m = (1/n) sum_i D_i (all n tokens, zero ones included, so m = c(t) - c(t-1)):

        (1/n_moving) sum_i u_i . m / |m| = (sum_i u_i) . m / (n_moving |m|).

    Because m contains each D_i, independent directions give about 1/sqrt(n), not 0 (for equal
    lengths exactly sqrt((1 + (n - 1) mean_cos) / n)). NaN when no token moves or m = 0.
    """
    D = np.asarray(D)
    s, n, _ = _unit_sum(D, norms)
    return _alignment(s, n, D.mean(axis=0, dtype=np.float64) if D.shape[0] else None)


def expected_random(n: int, d: int) -> float:
    """Standard deviation of mean_cos for n independent isotropic random unit vectors in R^d:

        sd = sqrt(2 / (n (n - 1) d)).

    Derivation: mean_cos = (2 / (n (n-1))) sum_{i<j} u_i . u_j. Each term has mean 0 and variance
    E[(u_i . u_j)^2] = u_j^T E[u_i u_i^T] u_j = 1/d, and distinct pairs are uncorrelated
    (E[(u_i . u_j)(u_i . u_k)] = E[u_i^T u_j u_k^T u_i] = 0 for j != k), so
    Var = 4 / (n (n-1))^2 * n (n-1) / 2 * (1/d) = 2 / (n (n-1) d). This holds exactly for every
    n >= 2, not only to leading order; the distribution is near-normal for large n. NaN for n < 2.
    """
    if n < 2 or d < 1:
        return math.nan
    return math.sqrt(2.0 / (n * (n - 1) * d))


def interpret(mean_cos: float, n: int, d: int) -> str:
    """One phrase, starting with a label, for a coherence value against random directions.

    z = mean_cos / expected_random(n, d). Labels:
      "independent"      |z| < 5 (consistent with independent random directions)
      "swarm"            z >= 5 and mean_cos >= 0.5 (for a shared drift plus isotropic noise,
                         mean_cos ~ the share of each token's squared displacement along the drift)
      "partly coherent"  z >= 5 and mean_cos < 0.5
      "anti-aligned"     z <= -5 (possible only for small n: mean_cos >= -1/(n-1))
      "undefined"        mean_cos is NaN (fewer than 2 moving tokens)
    """
    sd = expected_random(n, d)
    if not (np.isfinite(mean_cos) and np.isfinite(sd)):
        return f"undefined: fewer than 2 moving tokens (n={n})"
    z = mean_cos / sd
    if abs(z) < Z_LEVEL:
        label = "independent"
    elif z >= Z_LEVEL:
        label = "swarm" if mean_cos >= SWARM_COS else "partly coherent"
    else:
        label = "anti-aligned"
    return (f"{label}: mean pairwise cosine {mean_cos:.3g} over {n} moving tokens is {z:+.1f} sd from "
            f"independent random directions (sd {sd:.2g} in R^{d})")
