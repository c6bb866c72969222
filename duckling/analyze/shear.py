"""Shearing in the Record: each token set's motion field (metrics.shear) at log-spaced frame pairs.

Fitting a d x d field to every set at every frame would slow the main pass for a quantity that changes
slowly, so it is fitted at the frame pairs (t', t) that end at N_PAIRS log-spaced frames (the two-sample
tests' spacing, stage.test_step_indices) and at the last one, reading those frames apart from the
pass, like the detector. Positions are the earlier frame's rows, displacements per step.
"""
from __future__ import annotations

import numpy as np

from duckling import movie
from duckling.analyze import fields
from duckling.metrics import lattice, shear

N_PAIRS = 48


def pair_indices(steps: np.ndarray, n: int = N_PAIRS) -> np.ndarray:
    """Indices i of the later frames of the fitted pairs (i - 1, i): n log-spaced, and the last."""
    from duckling.analyze.stage import test_step_indices  # here, not at the top: stage imports this module

    steps = np.asarray(steps)
    if steps.size < 2:
        return np.zeros(0, np.int64)
    return np.unique(np.append(test_step_indices(steps, n), steps.size - 1))


def over_time(mv: movie.Movie, sets: dict[str, np.ndarray], n: int = N_PAIRS) -> dict:
    """The shear record: for each set, at each fitted pair, expansion, shear and rotation with their
    random-walk baselines and ratios (shear.motion_field), their medians over the run
    (shear.beyond_random), a verdict per set and the sentence the book prints. frame_steps lists the
    frames read (each once)."""
    from duckling.analyze.stage import one_blas_thread

    steps = np.asarray(mv.steps, dtype=np.int64)
    idx = pair_indices(steps, n)
    names = [s for s in sets if np.asarray(sets[s]).size]
    per = {s: {k: [] for k in ("n", *shear.PARTS, *(f"{p}_baseline" for p in shear.PARTS),
                               *(f"{p}_ratio" for p in shear.PARTS))} for s in names}
    with one_blas_thread():  # d x d products: OpenBLAS's threads cost several times their gain here
        read = _fit_pairs(mv, sets, steps, idx, per)
    summary = {s: {p: shear.beyond_random(per[s][f"{p}_ratio"]) for p in shear.PARTS} for s in names}
    for s in names:  # the sign says which: expanding or contracting
        e = np.asarray(per[s]["expansion"], dtype=np.float64)
        summary[s]["expansion"]["median"] = float(np.median(e[np.isfinite(e)])) if np.isfinite(e).any() else None
    return {"steps": steps[idx].tolist(), "prev_steps": steps[np.maximum(idx - 1, 0)].tolist(),
            "frame_steps": read, "ratio_level": shear.RATIO_LEVEL, "sets": per,
            "summary": summary, "answer": answer(summary, {s: np.asarray(sets[s]).size for s in sets}, mv.d),
            "definitions": fields.documented((shear.linear_field, shear.parts, shear.motion_field,
                                              shear.beyond_random))}


def _fit_pairs(mv: movie.Movie, sets: dict, steps: np.ndarray, idx: np.ndarray, per: dict) -> list[int]:
    """Fit every set at the pairs (i - 1, i), i in idx, into `per`; returns the steps of the frames read."""
    read, cache = [], {}
    for i in idx:
        for j in (i - 1, i):
            if j not in cache:
                cache[j] = lattice.to_float32(mv.frame(int(steps[j])))
                read.append(int(steps[j]))
        prev, cur = cache[i - 1], cache[i]
        for j in [j for j in cache if j < i]:  # pairs come in step order: only frame i is needed again
            del cache[j]
        gap = float(steps[i] - steps[i - 1])
        for s in per:
            rows = np.asarray(sets[s])
            X = prev[rows].astype(np.float64)
            fit = shear.motion_field(X, (cur[rows] - X) / gap)
            per[s]["n"].append(fit["n"])
            for p in shear.PARTS:
                per[s][p].append(fit[p])
                per[s][f"{p}_baseline"].append(fit["baseline"][p])
                per[s][f"{p}_ratio"].append(fit["ratio"][p])
    return read


NAMES = {"phantom": "phantom", "natural_dead": "natural dead", "live": "live"}


def answer(summary: dict, sizes: dict, d: int) -> str:
    """One sentence per set: which parts of its motion field exceed a random walk's."""
    out = []
    for s, n in sizes.items():
        name = NAMES.get(s, s)
        parts = summary.get(s)
        if not parts or not any(v["n"] for v in parts.values()):
            out.append(f"The {name} set ({n:,} rows) is too small for a field in R^{d} (it needs {d + 1} rows)."
                       if n else f"There are no {name} tokens.")
            continue
        big = [p for p in shear.PARTS if parts[p]["beyond"]]
        ratios = ", ".join(f"{p} {parts[p]['median_ratio']:.2g}" for p in shear.PARTS)
        grows = (parts["expansion"].get("median") or 0) > 0
        verbs = [{"expansion": "expands" if grows else "contracts", "shear": "shears", "rotation": "rotates"}[p]
                 for p in big]
        verb = ("moves as a random walk of the same speeds would" if not verbs else
                (", ".join(verbs[:-1]) + " and " if len(verbs) > 1 else "") + verbs[-1] + " beyond a random walk")
        out.append(f"The {name} cloud {verb} (median ratio to the random-walk baseline: {ratios}).")
    return " ".join(out)
