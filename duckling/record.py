"""The analyze stage: one streaming pass over a run's movie computes the Record.

Every metric is defined in its own module (lattice, cloud, cooling, coherence, compare); this
module only walks the frames once, applies them to each token set, and writes
data/record/<run>/series.npz (time series, one value per frame) and record.json (verdicts,
summaries, provenance). The report reads only these and the training metrics.

Token sets: `phantom` (rows >= live_vocab), `natural_dead` (live ids other than the separator
with zero count in the train stream) and `live` (ids that occur), the reference.
Rows are permuted once per frame so that each set is a contiguous slice (views, not copies).
Memory: the current, previous and first frames plus a ring of `coherence_window` frames.
With record_every > 1, displacements are between consecutive frames and velocities and speeds
are divided by the step gap, so they stay per step.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections import deque

import numpy as np
from tqdm.auto import tqdm

from duckling import cloud, coherence, compare, cooling, corpus, lattice, movie, tokenizer
from duckling.config import Config
from duckling.errors import DucklingError
from duckling.io import atomic_path, fingerprint, read_json, up_to_date, write_json

SETS = ("phantom", "natural_dead", "live")
PLATEAU = 6.75  # the loss the previous model (Goldilocks) never got below
SCALARS = ("drift", "velocity", "rms_radius", "median_radius", "anisotropy", "effective_dim", "axis_turn",
           "speed_q10", "speed_q50", "speed_q90", "speed_mean", "cum_q10", "cum_q50", "cum_q90",
           "ulp_q50", "ulp_q90", "zero_cross_frac", "coherence", "coherence_k", "alignment", "n_zero")


def token_sets(cfg: Config, counts: np.ndarray) -> dict[str, np.ndarray]:
    live_ids = np.arange(cfg.live_vocab)
    occurs = counts[: cfg.live_vocab] > 0
    dead = live_ids[~occurs & (live_ids != cfg.separator_id)]
    return {"phantom": np.arange(cfg.live_vocab, cfg.rows), "natural_dead": dead, "live": live_ids[occurs]}


def test_step_indices(steps: np.ndarray, n: int) -> np.ndarray:
    """Frame indices for the two-sample tests: n steps spread evenly on a log axis over steps >= 1."""
    if steps.size < 2 or n < 1:
        return np.zeros(0, np.int64)
    want = np.geomspace(max(1, steps[1]), steps[-1], n)
    idx = np.searchsorted(steps, want).clip(1, steps.size - 1)
    return np.unique(idx)


def _movie_sha(mv: movie.Movie) -> str:
    """One hash over every frame's checksum: names the exact movie analysed."""
    h = hashlib.sha256()
    for step in mv.steps:
        h.update(f"{step}:{mv.checksum(int(step))};".encode())
    return h.hexdigest()


class _Walker:
    """Per-frame state and series for one pass."""

    def __init__(self, cfg: Config, steps: np.ndarray, sets: dict[str, np.ndarray]):
        self.cfg, self.steps, self.T, self.k = cfg, steps, steps.size, max(1, cfg.coherence_window)
        self.perm = np.concatenate([sets[s] for s in SETS])
        bounds = np.cumsum([0] + [sets[s].size for s in SETS])
        self.slices = {s: slice(bounds[i], bounds[i + 1]) for i, s in enumerate(SETS)}
        self.n = {s: sets[s].size for s in SETS}
        self.d = cfg.d_model
        nan = lambda *shape: np.full((self.T, *shape), np.nan)  # noqa: E731
        self.series = {f"{s}/{m}": nan() for s in SETS for m in SCALARS}
        for s in SETS:
            self.series[f"{s}/regimes"] = nan(len(lattice.REGIMES))
            self.series[f"{s}/centroid"] = nan(self.d)
        self.test_idx = test_step_indices(steps, cfg.test_steps)
        self.speeds_at = {s: [] for s in ("phantom", "natural_dead")}
        self.c0, self.c_prev, self.axis_prev = {}, {}, {}
        self.ring: deque = deque(maxlen=self.k)

    def frame(self, i: int, bits: np.ndarray) -> None:
        bits = bits[self.perm]
        X = lattice.to_float32(bits)
        S = self.series
        if i == 0:
            self.bits0, self.X0 = bits, X
        else:
            gap = float(self.steps[i] - self.steps[i - 1])
            L1, Linf, L2 = lattice.lattice_displacement(self.bits_prev, bits)
            codes = lattice.classify(L1, Linf, L2, self.d)
            ulp_max, _ = lattice.ulp_displacement(self.bits_prev, bits)
            zc = lattice.zero_crossings(self.bits_prev, bits)
            D = X - self.X_prev
            speed = cooling.row_norms(D) / gap
        cum = cooling.row_norms(X - self.X0)
        for s in SETS:
            sl, n = self.slices[s], self.n[s]
            if n == 0:
                continue
            Xs = X[sl]
            c = cloud.centroid(Xs)
            S[f"{s}/centroid"][i] = c
            S[f"{s}/rms_radius"][i], S[f"{s}/median_radius"][i] = cloud.radius(Xs, c)
            eigs, axis = cloud.gyration(Xs, c)
            S[f"{s}/anisotropy"][i], S[f"{s}/effective_dim"][i] = cloud.shape(eigs)
            S[f"{s}/cum_q10"][i], S[f"{s}/cum_q50"][i], S[f"{s}/cum_q90"][i] = cooling.speed_quantiles(cum[sl])
            if i == 0:
                self.c0[s] = c
                S[f"{s}/drift"][i] = 0.0
            else:
                S[f"{s}/drift"][i] = cloud.drift(self.c0[s], c)
                S[f"{s}/velocity"][i] = cloud.velocity(self.c_prev[s], c, gap)
                S[f"{s}/axis_turn"][i] = cloud.axis_turn(self.axis_prev[s], axis)
                q = cooling.speed_quantiles(speed[sl])
                S[f"{s}/speed_q10"][i], S[f"{s}/speed_q50"][i], S[f"{s}/speed_q90"][i] = q
                S[f"{s}/speed_mean"][i] = speed[sl].mean()
                S[f"{s}/regimes"][i] = lattice.regime_fractions(codes[sl])
                S[f"{s}/ulp_q50"][i], S[f"{s}/ulp_q90"][i] = np.quantile(ulp_max[sl], (0.5, 0.9))
                S[f"{s}/zero_cross_frac"][i] = zc[sl].sum() / (n * self.d)
                coh = coherence.coherence(D[sl])
                S[f"{s}/coherence"][i], S[f"{s}/alignment"][i] = coh["mean_cos"], coh["centroid_cos"]
                S[f"{s}/n_zero"][i] = coh["n_zero"]
                if len(self.ring) == self.k:
                    S[f"{s}/coherence_k"][i] = coherence.coherence(Xs - self.ring[0][sl])["mean_cos"]
                if s in self.speeds_at and i in self.test_idx:
                    self.speeds_at[s].append(speed[sl].copy())
            self.c_prev[s], self.axis_prev[s] = c, axis
        self.bits_prev, self.X_prev = bits, X
        self.ring.append(X)


def _summaries(cfg: Config, w: _Walker, precision: str) -> dict:
    S, steps = w.series, w.steps
    out = {"fimbulwinter": {}, "cooling": {}, "velocity_trend": {}, "coherence": {}}
    for s in SETS:
        if w.n[s] == 0:
            continue
        reg = S[f"{s}/regimes"][1:]
        if reg.shape[0]:
            v = lattice.fimbulwinter_verdict(steps[1:], reg[:, 0], reg[:, :3].sum(1), precision)
            out["fimbulwinter"][s] = v
        out["cooling"][s] = cooling.late_slope(steps[1:], S[f"{s}/speed_q50"][1:])
        out["velocity_trend"][s] = cloud.velocity_trend(steps[1:], S[f"{s}/velocity"][1:])
        n_moving = int(np.nanmedian(w.n[s] - S[f"{s}/n_zero"][1:])) if steps.size > 1 else 0
        mean = float(np.nanmean(S[f"{s}/coherence"])) if steps.size > 1 else math.nan
        out["coherence"][s] = {
            "mean": mean, "mean_k": float(np.nanmean(S[f"{s}/coherence_k"])) if np.isfinite(S[f"{s}/coherence_k"]).any() else math.nan,
            "alignment": float(np.nanmean(S[f"{s}/alignment"])) if steps.size > 1 else math.nan,
            "expected_random": coherence.expected_random(n_moving, w.d),
            "interpretation": coherence.interpret(mean, n_moving, w.d),
        }
    return out


def _compare(w: _Walker) -> dict:
    S, tests = w.series, []
    for j, i in enumerate(w.test_idx):
        a, b = w.speeds_at["phantom"], w.speeds_at["natural_dead"]
        t = compare.speed_tests(a[j] if j < len(a) else np.zeros(0), b[j] if j < len(b) else np.zeros(0))
        tests.append({"step": int(w.steps[i]), **t})
    angle = math.nan
    if w.n["natural_dead"] and w.steps.size > 1:
        cp, cd = S["phantom/centroid"], S["natural_dead/centroid"]
        angle = compare.drift_angle(cp[0], cp[-1], cd[0], cd[-1])
    if not w.n["natural_dead"]:
        answer = "This corpus leaves no natural dead tokens, so there is nothing to compare the phantoms with."
    else:
        ps = [t.get("ks_p", math.nan) for t in tests]
        alike = all(p > 0.01 for p in ps if np.isfinite(p)) and any(np.isfinite(p) for p in ps)
        dp, dn = S["phantom/drift"][-1], S["natural_dead/drift"][-1]
        answer = (f"Phantom and natural dead tokens {'move alike' if alike else 'move differently'}: "
                  f"speed distributions {'agree' if alike else 'differ'} (KS test, p {'>' if alike else '<='} 0.01 "
                  f"at {'every' if alike else 'some'} tested step), their centroids drifted {dp:.3g} and {dn:.3g}, "
                  f"{angle:.0f} degrees apart.")
    return {"tests": tests, "drift_angle_deg": angle, "answer": answer}


def _learning(cfg: Config, cmeta: dict) -> dict:
    from duckling.train import read_csv

    tj = read_json(cfg.run_dir / "train.json")
    ev = read_csv(cfg.run_dir / "evals.csv")
    final, best, H = float(ev["val_loss"][-1]), float(ev["val_loss"].min()), cmeta["unigram_entropy_nats"]
    learned = final < PLATEAU and final < H
    answer = (f"{'Yes' if learned else 'Not yet'}: validation loss {final:.3f} nats "
              f"({float(ev['val_bpb'][-1]):.3f} bits per byte) is {'below' if final < PLATEAU else 'above'} the old "
              f"plateau {PLATEAU} and {'below' if final < H else 'above'} the unigram floor {H:.3f}.")
    return {"final_val_loss": final, "best_val_loss": best, "final_val_bpb": float(ev["val_bpb"][-1]),
            "unigram_entropy": H, "plateau": PLATEAU, "learned": bool(learned), "answer": answer,
            "final_train_loss": tj.get("final_loss")}


def _lifecycle(w: _Walker, fimb: dict) -> dict:
    """Birth at init; drift from the first step the phantom centroid moves; cooling from the peak of
    the median speed; freezing from the step the frozen fraction stays above 50% (onset_50)."""
    S, steps = w.series, w.steps
    v, q50 = S["phantom/velocity"], S["phantom/speed_q50"]
    moving = np.flatnonzero(v > 0)
    drift_start = int(steps[moving[0]]) if moving.size else None
    cooling_start = int(steps[np.nanargmax(q50)]) if np.isfinite(q50).any() else None
    freeze = fimb.get("phantom", {}).get("onset_50")
    sentence = (f"Born at step 0, the phantom cloud starts drifting at step {drift_start}, cools from step "
                f"{cooling_start} (its median speed peaks there) and "
                + (f"freezes (over half its tokens unchanged in bf16 for good) from step {freeze}."
                   if freeze is not None else "does not freeze within the run."))
    return {"birth": 0, "drift_start": drift_start, "cooling_start": cooling_start, "freeze_start": freeze,
            "sentence": sentence}


DEFINED = {"centroid": cloud.centroid, "drift": cloud.drift, "velocity": cloud.velocity, "radius": cloud.radius,
           "gyration": cloud.gyration, "shape": cloud.shape, "axis_turn": cloud.axis_turn,
           "velocity_trend": cloud.velocity_trend, "drift_plane": cloud.drift_plane, "speed": cooling.speed,
           "cumulative_displacement": cooling.cumulative_displacement, "late_slope": cooling.late_slope,
           "ordinals": lattice.ordinals, "lattice_displacement": lattice.lattice_displacement,
           "classify": lattice.classify, "ulp": lattice.ulp, "ulp_displacement": lattice.ulp_displacement,
           "zero_crossings": lattice.zero_crossings, "fimbulwinter_verdict": lattice.fimbulwinter_verdict,
           "coherence": coherence.coherence, "expected_random": coherence.expected_random,
           "speed_tests": compare.speed_tests, "drift_angle": compare.drift_angle}


def analyze(cfg: Config, force: bool = False, progress: bool = True, verify: bool = True) -> dict:
    """Walk the movie once and write data/record/<run>/{series.npz, record.json}."""
    mv = movie.Movie(cfg.movie_dir)
    tmeta = cfg.run_dir / "train.json"
    if not tmeta.exists():
        raise DucklingError(f"{tmeta}: training of run {cfg.run} has not finished; run `invoke train --run {cfg.run}`")
    cmeta = corpus.load_meta(cfg)
    movie_sha = _movie_sha(mv)
    fp = fingerprint({"movie": movie_sha, "corpus": cmeta["sha256"], "train": read_json(tmeta).get("fingerprint"),
                      **cfg.subset("coherence_window", "test_steps", "live_vocab", "rows")})
    out_npz, out_json = cfg.record_dir / "series.npz", cfg.record_dir / "record.json"
    if not force and up_to_date(out_json, fp, out_npz):
        print(f"analyze: up to date, skipped ({out_json}; use --force to redo)")
        return read_json(out_json)

    sets = token_sets(cfg, corpus.load(cfg)["counts"])
    steps = np.asarray(mv.steps, dtype=np.int64)
    w = _Walker(cfg, steps, sets)
    bar = tqdm(total=steps.size, desc=f"analyze {cfg.run}", unit="frame", disable=not progress)
    for i, (step, bits) in enumerate(mv.frames(verify=verify)):
        if step != steps[i]:
            raise DucklingError(f"{cfg.movie_dir}: frame {i} has step {step}, expected {steps[i]}")
        w.frame(i, bits)
        bar.update(1)
    bar.close()

    precision = read_json(tmeta)["precision"]
    summ = _summaries(cfg, w, precision)
    series = dict(w.series, steps=steps, test_steps=steps[w.test_idx])
    planes = {}
    for s in SETS:
        if w.n[s]:
            plane = cloud.drift_plane(series[f"{s}/centroid"])
            series[f"{s}/path2d"] = plane["xy"]
            planes[s] = {"explained": plane["explained"]}
        else:
            series[f"{s}/path2d"] = np.full((steps.size, 2), np.nan)
    for s in ("phantom", "natural_dead"):
        sp = w.speeds_at[s]
        series[f"{s}/speeds_at_tests"] = np.stack(sp) if sp else np.zeros((0, w.n[s]))
    record = {
        "fingerprint": fp, "run": cfg.run, "config": cfg.to_dict(), "precision": precision, "k": w.k,
        "sets": {s: int(w.n[s]) for s in SETS},
        "provenance": {"movie_sha256": movie_sha, "corpus_sha256": cmeta["sha256"], "frames": int(steps.size),
                       "tokenizer_sha256": tokenizer.load_meta(cfg).get("tokenizer_sha256")},
        **summ, "drift_plane": planes, "compare": _compare(w), "learning": _learning(cfg, cmeta),
        "definitions": {k: inspect.getdoc(f) or "" for k, f in DEFINED.items()},
    }
    record["lifecycle"] = _lifecycle(w, summ["fimbulwinter"])
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **series)
    write_json(out_json, json.loads(json.dumps(record, default=_jsonable)))
    verdict = summ["fimbulwinter"].get("phantom", {}).get("verdict", "n/a")
    print(f"analyze: {steps.size} frames, sets {', '.join(f'{s} {w.n[s]}' for s in SETS)}; phantom verdict: "
          f"{verdict} -> {cfg.record_dir}")
    return record


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def load(cfg: Config) -> tuple[dict[str, np.ndarray], dict]:
    npz, js = cfg.record_dir / "series.npz", cfg.record_dir / "record.json"
    if not (npz.exists() and js.exists()):
        raise DucklingError(f"{cfg.record_dir}: no record for run {cfg.run}; run `invoke analyze --run {cfg.run}`")
    with np.load(npz) as z:
        series = {k: z[k] for k in z.files}
    return series, read_json(js)
