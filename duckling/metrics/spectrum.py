"""The frequency spectrum: where between the dead and the live do tokens seen a few times sit?

Token sets by their count in the train stream (corpus.count_sets): phantom, natural_dead (count 0),
seen_1, seen_2-3, seen_4-10, seen_11-100, seen_101-1000, seen_1001+. Each set is read in three frames
only: frame 0 (rows X0), the one before the last (Xp, step T') and the last (X, step T); rows are
float32 (n, d), bf16 bit patterns (uint16) where a definition counts cells. The phantom cloud is the
dead reference: its centroid c_ph, its rms radius r_ph and its drift m = c_ph(T) - c_ph(0).
"""
from __future__ import annotations

import math

import numpy as np

from duckling.metrics import cloud, cooling, lattice

ALPHA = 0.01  # KS p above which a bin's final speeds are not told apart from the phantoms'
JOIN_LEVEL = 0.5  # the share of the way from the dead cloud to the frequent tokens that counts as joined


def final_speeds(Xp, X, gap: float) -> np.ndarray:
    """Per-row speed over the last frame pair, per step: |w_i(T) - w_i(T')| / (T - T') (cooling.speed)."""
    return cooling.speed(Xp, X) / gap


def frozen_fraction(bits_prev, bits) -> float:
    """Share of the rows with L1 = 0 over the last frame pair: no coordinate crossed a bf16 cell
    (lattice.lattice_displacement, the lattice's 'frozen'). NaN for an empty set."""
    l1 = lattice.lattice_displacement(bits_prev, bits)[0]
    return float(np.mean(l1 == 0)) if l1.size else math.nan


def swarm_alignment(X0, X, m) -> float:
    """Mean cosine between each row's displacement over the run and the dead swarm's:

        (1/n_moving) sum_i cos(w_i(T) - w_i(0), m),   m = c_ph(T) - c_ph(0),

    over the rows that moved (a row with w_i(T) = w_i(0) has no direction and is left out). For the
    phantom set itself this is coherence.centroid_alignment of its displacements over the run.
    NaN when no row moved or m = 0."""
    D = np.subtract(X, X0, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    norms, nm = cooling.row_norms(D), float(np.linalg.norm(m))
    moving = norms > 0
    if not moving.any() or not nm > 0:
        return math.nan
    return float(np.mean(D[moving] @ m / (norms[moving] * nm)))


def distance_scale(dist, dist_dead, dist_live) -> float:
    """Where a set's distance from the phantom centroid lies between the dead and the live:

        f = (dist - dist_dead) / (dist_live - dist_dead),

    dist_dead the phantoms' own median distance from their centroid, dist_live that of the most frequent
    tokens. 0: as close as the phantoms themselves, 1: as far as the frequent tokens. NaN unless
    dist_live > dist_dead (the frequent tokens have not left the dead cloud)."""
    if not (np.isfinite(dist) and np.isfinite(dist_dead) and dist_live > dist_dead):
        return math.nan
    return float((dist - dist_dead) / (dist_live - dist_dead))


def join_index(flags) -> int | None:
    """The first position in a ladder of sets (rarest first) from which every set holds the flag
    (NaN or None counts as not): the count at which tokens have joined the live cloud for good.
    None when the last set does not hold it."""
    ok = [bool(f) if f is not None and not (isinstance(f, float) and math.isnan(f)) else False for f in flags]
    i = len(ok)
    while i > 0 and ok[i - 1]:
        i -= 1
    return i if i < len(ok) else None


def bin_metrics(X0, Xp, X, bits_prev, bits, gap: float, c_ph, r_ph: float, m) -> tuple[dict, np.ndarray]:
    """Every per-set quantity of the spectrum for one set (rows X0, Xp, X; bf16 bits of the last pair),
    with c_ph, r_ph and m the phantom cloud's centroid at T, rms radius at T and drift:

      drift         |c(T) - c(0)| of the set's own centroid (cloud.drift)
      final_speed   median_i |w_i(T) - w_i(T')| / (T - T') (final_speeds)
      cumulative    median_i |w_i(T) - w_i(0)| (cooling.cumulative_displacement)
      frozen        share of rows with L1 = 0 over the last pair (frozen_fraction)
      swarm_cos     mean_i cos(w_i(T) - w_i(0), m) over the rows that moved (swarm_alignment)
      dist_phantom  median_i |w_i(T) - c_ph| (cloud.radius_of about the phantom centroid)
      dist_rel      dist_phantom / r_ph

    plus the 10% and 90% quantiles of the per-row speed, cumulative displacement and distance, and n.
    NaN for an empty set. Returns (that dict, the final speeds, for the two-sample tests)."""
    X0, Xp, X = (np.asarray(a, dtype=np.float32) for a in (X0, Xp, X))
    n = X.shape[0]
    out = {"n": int(n)}
    if n == 0:
        keys = ("drift", "final_speed", "cumulative", "frozen", "swarm_cos", "dist_phantom", "dist_rel")
        out.update({k: math.nan for k in keys})
        out.update({f"{k}_q{q}": math.nan for k in ("speed", "cumulative", "dist") for q in (10, 90)})
        return out, np.zeros(0)
    sp = final_speeds(Xp, X, gap)
    cum = cooling.cumulative_displacement(X0, X)
    dist = cooling.row_norms(np.subtract(X, c_ph, dtype=np.float64))
    med_dist = cloud.radius_of(dist * dist)[1]
    out.update(drift=cloud.drift(cloud.centroid(X0), cloud.centroid(X)), final_speed=float(np.median(sp)),
               cumulative=float(np.median(cum)), frozen=frozen_fraction(bits_prev, bits),
               swarm_cos=swarm_alignment(X0, X, m), dist_phantom=med_dist,
               dist_rel=med_dist / r_ph if r_ph > 0 else math.nan)
    for k, v in (("speed", sp), ("cumulative", cum), ("dist", dist)):
        out[f"{k}_q10"], out[f"{k}_q90"] = (float(q) for q in cooling.quantiles(v, (0.1, 0.9)))
    return out, sp
