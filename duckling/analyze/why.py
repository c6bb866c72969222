"""Why they move: the forces logged in training (runs/<run>/forces.npy) held against the movie.

Training logs, per step and token set, the mean loss gradient g, the mean Adam direction a, its RMS,
the weight-decay share and the predicted-frozen fraction of the set's coordinates, and the mean
final hidden state h (duckling/train/forces.py). The Record's series give each set's centroid,
median speed and frozen fraction per frame. For the sets both have (phantom, natural dead),
`compare` asks, per pair of consecutive frames (the per-step forces gathered over the steps
between them, metrics.why.over_gaps):

- direction: does the centroid move along -lr a, and does that step point away from h, as the
  softmax gradient of a never-seen row, g_i = (1/N) sum_n p_ni h_n, says?
- speed: is the median row speed lr(t) sqrt(d) RMS(a), i.e. is cooling the learning-rate schedule?
- freezing: do the coordinates predicted frozen (|dw| < ulp / 2), as rows (metrics.why.row_frozen),
  match the frozen rows of the movie, their 50% and 99% onsets and the verdict?

and the same forces for every count bin. forces.npy names no sets: its set order is
corpus.count_sets', the one training wrote it in. Numbers go into record.json under "why", with the
per-frame series the figures draw (at most MAX_POINTS frames, evenly spaced) and the sentences the
chapter states.
"""
from __future__ import annotations

import math

import numpy as np

from duckling.analyze import fields
from duckling.config import Config
from duckling.data import corpus
from duckling.errors import DucklingError
from duckling.io import read_csv
from duckling.metrics import lattice
from duckling.metrics import why as W

FILE = "forces.npy"  # train/forces.py's FILE: the analysis never imports the trainer
FIELDS = ("grad", "adam", "adam_rms", "decay_share", "frozen_pred", "hidden")
MAX_POINTS = 1000  # frames kept for the figures; every number is computed on all of them
LABELS = {"phantom": "phantom", "natural_dead": "natural dead"}


def _f(x, digits: int = 3) -> str:
    """A number for a sentence (the analysis cannot use the book's fmt)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.{digits - 1}e}"


def _step(x) -> str:
    return "never" if x is None else f"step {int(x):,}"


def _c(x) -> str:
    """A cosine to three decimals (1.000 is not 1)."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _r(x) -> str:
    """A ratio to two decimals."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _pct(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


# ---- reading the run --------------------------------------------------------------------------
def load_forces(cfg: Config, n_sets: int, d: int) -> np.ndarray | None:
    """forces.npy of the run, memory-mapped (None when training logged none); refused when it does
    not hold one row per step of n_sets sets in R^d."""
    path = cfg.run_dir / FILE
    if not path.exists():
        return None
    fix = f"retrain with `invoke train --run {cfg.run} --force`"
    try:
        F = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise DucklingError(f"{path}: not a forces log ({str(e).splitlines()[0][:80]}); {fix}") from None
    names = F.dtype.names or ()
    if any(k not in names for k in FIELDS) or F.ndim != 1 or F["adam"].shape[1:] != (n_sets, d) \
            or F["hidden"].shape[1:] != (d,):
        raise DucklingError(f"{path}: not the forces of {n_sets} token sets in R^{d}; {fix}")
    if F.shape[0] != cfg.steps + 1:
        raise DucklingError(f"{path}: {F.shape[0]} rows for a run of {cfg.steps} steps (one a step, and "
                            f"step 0); {fix}")
    return F


def lr_by_step(cfg: Config) -> np.ndarray:
    """lr(k) of each step k from metrics.csv (NaN at step 0, before any update)."""
    m = read_csv(cfg.run_dir / "metrics.csv")
    out = np.full(cfg.steps + 1, np.nan)
    if m:
        if m["step"].min() < 1 or m["step"].max() > cfg.steps:
            raise DucklingError(f"{cfg.run_dir / 'metrics.csv'}: steps {m['step'].min()}..{m['step'].max()} "
                                f"outside 1..{cfg.steps}; retrain with `invoke train --run {cfg.run} --force`")
        out[m["step"]] = m["lr"]
    return out


# ---- the comparison ---------------------------------------------------------------------------
def _thin(n: int) -> np.ndarray:
    return np.arange(n) if n <= MAX_POINTS else np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))


def _forces_of(F: np.ndarray, j: int, lr: np.ndarray, fs: np.ndarray, d: int) -> dict:
    """Set j's forces per frame pair: the predicted displacement -sum lr a, the summed gradient,
    the mean hidden state, the expected speed, the predicted-frozen coordinates (their minimum over
    the gap: a coordinate unchanged across it stayed frozen at every step) and the decay share."""
    A = np.asarray(F["adam"][:, j], dtype=np.float64)
    return {"step": W.over_gaps(fs, -lr[:, None] * A), "grad": W.over_gaps(fs, F["grad"][:, j]),
            "hidden": W.over_gaps(fs, F["hidden"], "mean"),
            "speed": W.over_gaps(fs, W.expected_speed(lr, F["adam_rms"][:, j], d), "mean"),
            "adam_rms": W.over_gaps(fs, F["adam_rms"][:, j], "mean"),
            "coords": W.over_gaps(fs, F["frozen_pred"][:, j], "min"),
            "decay": W.over_gaps(fs, F["decay_share"][:, j], "mean")}


def _set(S: str, f: dict, series: dict, fs: np.ndarray, d: int, precision: str) -> tuple[dict, dict]:
    """One set's three comparisons (numbers) and its per-frame-pair series."""
    at = fs[1:]
    dC = np.diff(np.asarray(series[f"{S}/centroid"], dtype=np.float64), axis=0)
    cos = {"velocity_step": W.cosine(dC, f["step"]), "step_hidden": W.cosine(f["step"], f["hidden"]),
           "grad_hidden": W.cosine(f["grad"], f["hidden"]), "velocity_hidden": W.cosine(dC, f["hidden"])}
    observed = np.asarray(series[f"{S}/speed_q50"][1:], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = observed / f["speed"]
    reg = np.asarray(series[f"{S}/regimes"][1:], dtype=np.float64)
    rows = W.row_frozen(f["coords"], d)
    kept = np.asarray(series.get(f"{S}/kept_cells", np.full(fs.size, np.nan))[1:], dtype=np.float64)
    out = {
        "direction": {k: W.medians(at, v) for k, v in cos.items()},
        "speed": {**W.ratio_spread(ratio), "clear": W.ratio_spread(ratio[W.clear_of_lattice(f["coords"])]),
                  "last": float(ratio[-1]) if ratio.size else math.nan, "adam_rms": W.medians(at, f["adam_rms"])},
        "freezing": {
            "predicted_coords": W.onsets(at, f["coords"]), "predicted_rows": W.onsets(at, rows),
            "observed": W.onsets(at, reg[:, 0]), "gap": W.gap(rows, reg[:, 0]),
            "coords_observed": W.medians(at, kept), "coords_predicted": W.medians(at, f["coords"]),
            "coords_gap": W.gap(f["coords"], kept),
            "predicted_verdict": W.predicted_verdict(at, rows, precision) if at.size else "n/a",
            "observed_verdict": lattice.fimbulwinter_verdict(at, reg[:, 0], reg[:, :3].sum(1), precision)["verdict"]
            if at.size else "n/a"},
        "decay_share": W.medians(at, f["decay"])["all"],
    }
    keep = _thin(at.size)
    per_frame = {"cos_velocity_step": cos["velocity_step"], "cos_step_hidden": cos["step_hidden"],
                 "cos_grad_hidden": cos["grad_hidden"], "speed_observed": observed, "speed_expected": f["speed"],
                 "frozen_observed": reg[:, 0], "frozen_rows": rows, "frozen_coords": f["coords"],
                 "kept_cells": kept}
    return out, {k: v[keep] for k, v in per_frame.items()}


def compare(names: list[str], sizes: dict, F: np.ndarray, lr: np.ndarray, series: dict, precision: str) -> dict:
    """The "why" entry of record.json from the forces F (rows in `names`' order), lr per step and
    the Record's series (frames at series["steps"]); see the module docstring."""
    fs = np.asarray(series["steps"], dtype=np.int64)
    d = F["hidden"].shape[1]
    sets, curves, forces_table = {}, {}, {}
    for j, S in enumerate(names):
        if not sizes.get(S):
            continue
        f = _forces_of(F, j, lr, fs, d)
        forces_table[S] = {"size": int(sizes[S]), "cos_grad_hidden": W.medians(fs[1:], W.cosine(f["grad"], f["hidden"])),
                           "cos_step_hidden": W.medians(fs[1:], W.cosine(f["step"], f["hidden"])),
                           "adam_rms": W.medians(fs[1:], f["adam_rms"])["all"],
                           "decay_share": W.medians(fs[1:], f["decay"])["all"],
                           "frozen_coords_last": float(f["coords"][-1]) if f["coords"].size else math.nan,
                           "onset_99_coords": W.onsets(fs[1:], f["coords"])["onset_99"]}
        if f"{S}/centroid" in series and np.isfinite(series[f"{S}/centroid"]).any():
            sets[S], curves[S] = _set(S, f, series, fs, d, precision)
    out = {"available": True, "precision": precision, "d": int(d), "sets": sets, "forces": forces_table,
           "series": {"steps": fs[1:][_thin(fs.size - 1)], **curves}, "tolerance": W.TOLERANCE}
    out["answers"] = answers(sets, precision, d)
    return out


# ---- the sentences ----------------------------------------------------------------------------
def _direction(S: str, r: dict, first: bool) -> str:
    v, s, g = r["velocity_step"], r["step_hidden"]["all"], r["grad_hidden"]["all"]
    if not first:
        return (f"For the {LABELS[S]} tokens the same cosines are {_c(v['all'])} ({_c(v['early'])} early, "
                f"{_c(v['late'])} late), {_c(s)} and {_c(g)}.")
    away, along = s < 0, g > 0
    return (f"The {LABELS[S]} centroid moves along its mean Adam step −lr·a (median cosine {_c(v['all'])} over "
            f"frame pairs; {_c(v['early'])} in the first half of training, {_c(v['late'])} in the second), and "
            f"that step points {'away from' if away else 'towards'} the mean hidden state h (median cosine "
            f"{_c(s)}); the gradient itself points {'along' if along else 'against'} h (median cosine {_c(g)}), "
            + ("as the softmax gradient of a never-seen row, g_i = (1/N) Σ_n p_ni h_n, says."
               if away and along else "unlike what the softmax gradient of a never-seen row, g_i = (1/N) Σ_n "
               "p_ni h_n, alone would give."))


def _near(r: dict, tol: float) -> bool:
    """Whether a ratio_spread says 'the schedule': median within tol of 1, and most ratios too."""
    return r["n"] > 0 and abs(r["median"] - 1) <= tol and r["within"] >= 0.5


def _speed(S: str, r: dict, tol: float, first: bool) -> str:
    c = r["clear"]
    if not first:
        return (f"For the {LABELS[S]} tokens: {_r(r['median'])}× over all frame pairs, {_r(c['median'])}× clear "
                f"of the lattice, {_r(r['last'])}× at the last.")
    text = (f"The median {LABELS[S]} speed is {_r(r['median'])}× lr(t)·√d·RMS(a) over all frame pairs "
            f"(10–90%: {_r(r['q10'])}–{_r(r['q90'])}), within {tol:.0%} of it at {_pct(r['within'])} of "
            f"them; over the {c['n']} frame pairs whose step is clear of the lattice (under {W.CLEAR:.0%} of the "
            f"coordinates predicted frozen) it is {_r(c['median'])}×, within {tol:.0%} at "
            f"{_pct(c['within'])}; at the last frame pair it is {_r(r['last'])}×. RMS(a) is "
            f"{_f(r['adam_rms']['early'])} in the first half and {_f(r['adam_rms']['late'])} in the second. ")
    if _near(r, tol):
        return text + "Cooling is the learning-rate schedule acting through Adam's normalised step."
    if _near(c, tol):
        return text + ("Clear of the lattice, cooling is the learning-rate schedule acting through Adam's "
                       "normalised step; near it, rounding to the lattice sets the speed the movie shows.")
    return text + "Cooling is not the learning-rate schedule alone: the movie's speed departs from it."


def _freezing(S: str, r: dict, precision: str, d: int, first: bool) -> str:
    rows, obs, co = r["predicted_rows"], r["observed"], r["predicted_coords"]
    if not first:
        return (f"For the {LABELS[S]} tokens: predicted {_step(rows['onset_99'])}, observed "
                f"{_step(obs['onset_99'])}; verdicts {r['predicted_verdict']} and {r['observed_verdict']}.")
    what = "frozen" if precision == "pure-bf16" else "unchanged in bf16"
    return (f"Onset of 99% of the {LABELS[S]} rows {what}, predicted from the forces: {_step(rows['onset_99'])} "
            f"(50%: {_step(rows['onset_50'])}); seen in the movie: {_step(obs['onset_99'])} (50%: "
            f"{_step(obs['onset_50'])}). A row is predicted {what} with probability p^{d}, p the fraction of the "
            f"set's coordinates whose update is under half their ULP (p's own 99% onset: {_step(co['onset_99'])}); "
            f"the predicted and observed fractions lie {_f(r['gap']['mean_abs'])} apart on average (at most "
            f"{_f(r['gap']['max_abs'])}). Predicted verdict: {r['predicted_verdict']}; the movie's: "
            f"{r['observed_verdict']}. Coordinate by coordinate, the share predicted to keep its bf16 cell "
            f"(median {_f(r['coords_predicted']['all'])}) and the share the movie shows kept (median "
            f"{_f(r['coords_observed']['all'])}) lie {_f(r['coords_gap']['mean_abs'])} apart on average.")


def answers(sets: dict, precision: str, d: int) -> dict:
    """The chapter's sentences, one per question: the first set's in full (phantom), the others'
    numbers beside them."""
    if not sets:
        no = "No token set is both in the forces log and in the movie's Record, so nothing is compared."
        return {"direction": no, "speed": no, "freezing": no}
    out = {"direction": [], "speed": [], "freezing": []}
    for i, (S, r) in enumerate(sets.items()):
        out["direction"].append(_direction(S, r["direction"], i == 0))
        out["speed"].append(_speed(S, r["speed"], W.TOLERANCE, i == 0))
        out["freezing"].append(_freezing(S, r["freezing"], precision, d, i == 0))
    return {k: " ".join(v) for k, v in out.items()}


def definitions() -> dict[str, dict]:
    """The functions behind the numbers, with their docstrings (the chapter prints them)."""
    fns = (W.cosine, W.over_gaps, W.expected_speed, W.ratio_spread, W.clear_of_lattice, W.row_frozen, W.medians, W.onsets,
           W.predicted_verdict, W.gap)
    return fields.documented(fns)


# ---- the stage's entry --------------------------------------------------------------------------
def assemble(cfg: Config, series: dict, precision: str, counts: np.ndarray, dead_mask: np.ndarray) -> dict:
    """record.json's "why": the comparison for this run, or why there is none (counts: the live ids'
    train counts; dead_mask: the tokenizer's phantom rows)."""
    sets = corpus.count_sets(counts, cfg.separator_id, dead_mask)
    names = list(sets)
    F = load_forces(cfg, len(names), cfg.d_model)
    if F is None:
        no = (f"Training logged no forces for run {cfg.run} (log_forces is off); retrain with "
              f"`invoke train --run {cfg.run} --set log_forces=true --force` to compare them with the movie.")
        out = {"available": False, "answers": {"direction": no, "speed": no, "freezing": no}}
    else:
        out = compare(names, {k: v.size for k, v in sets.items()}, F, lr_by_step(cfg), series, precision)
    return {**out, "definitions": definitions()}
