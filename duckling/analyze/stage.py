"""The analyze stage: one streaming pass over a run's movie computes the Record.

Every metric is defined in its own module (lattice, cloud, cooling, coherence, compare); this
module only walks the frames once, applies them to each token set, and writes
data/record/<run>/series.npz (time series, one value per frame) and record.json (verdicts,
summaries, provenance). The report reads only these and the training metrics.

Token sets: `phantom` (rows >= live_vocab), `natural_dead` (live ids other than the separator
with zero count in the train stream) and `live` (ids that occur), the reference.
With record_every > 1, displacements are between consecutive frames and velocities and speeds
are divided by the step gap, so they stay per step.

`compute` is the pass itself and needs only a Movie and the sets; `analyze` adds the run's files.
parallel.Pass reads each frame once and hands it, with the previous frame, frame 0 and the frame k
back, to `_frame`, a pure function of those frames, in worker processes side by side; results
come back in step order. In `_frame`, fast.frame reads every row of the four frames once (the
sets as one row order, so no frame is copied to regroup it); each set's Gram matrix and its top
eigenpair come from BLAS/LAPACK on one thread. Drift, velocity and the axis turn need the frames
before, so they are computed from the stored centroids and axes after the pass.
Memory: the ring of frames in flight (k + 2 * workers + 4 frames of 2.6 MB), one float32
centred copy of a frame per worker, and the series (about 60 MB for a 100% movie).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import inspect
import json
import math
import os
import threading
import time

import numpy as np
from tqdm.auto import tqdm

from duckling import config, movie
from duckling.analyze import fast, fields, parallel, shear, spectrum, why
from duckling.config import Config
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError
from duckling.io import atomic_path, fingerprint, read_csv, read_json, up_to_date, write_json
from duckling.metrics import cloud, coherence, compare, cooling, detector, lattice

SETS = fields.SETS
PLATEAU = 6.75  # the loss the previous model (Goldilocks) never got below
COMPARED = ("phantom", "natural_dead")  # the sets whose speed distributions are tested
MAX_WORKERS = 8  # each worker costs a ring slot or two and a centred copy of the frame
PROCESS_MIN_FRAMES = 500  # shorter movies are analysed in one process


def token_sets(cfg: Config, counts: np.ndarray, dead_mask: np.ndarray) -> dict[str, np.ndarray]:
    """phantom: the rows the tokenizer's dead mask marks; natural_dead: corpus.natural_dead; live:
    the ids that occur in the train stream."""
    counts = counts[: cfg.live_vocab]
    return {"phantom": np.flatnonzero(dead_mask), "natural_dead": corpus.natural_dead(counts, cfg.separator_id),
            "live": np.flatnonzero(counts > 0)}


def test_step_indices(steps: np.ndarray, n: int) -> np.ndarray:
    """Frame indices for the two-sample tests: n steps spread evenly on a log axis over steps >= 1."""
    if steps.size < 2 or n < 1:
        return np.zeros(0, np.int64)
    want = np.geomspace(max(1, steps[1]), steps[-1], n)
    idx = np.searchsorted(steps, want).clip(1, steps.size - 1)
    return np.unique(idx)


test_step_indices.__test__ = False  # a helper, not a pytest test


def _movie_sha(mv: movie.Movie) -> str:
    """One hash over every frame's checksum: names the exact movie analysed."""
    h = hashlib.sha256()
    for step in mv.steps:
        h.update(f"{step}:{mv.checksum(int(step))};".encode())
    return h.hexdigest()


# ---- BLAS threads ----------------------------------------------------------------------------
_BLAS_SETTERS = (("openblas_get_num_threads", "openblas_set_num_threads"),
                 ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                 ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                 ("openblas_get_num_threads64_", "openblas_set_num_threads64_"))


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with every loaded OpenBLAS (numpy's and scipy's) on one thread.

    The frame workers are the parallelism; OpenBLAS's own spinning threads beside them are
    ruinous on a small busy machine (a Gram matrix an order of magnitude slower under load than
    on one thread). Linux only; elsewhere a no-op.
    """
    saved = []
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.rsplit("/", 1)[-1].lower()})
    except OSError:
        paths = []
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for get, put in _BLAS_SETTERS:
            if hasattr(lib, get) and hasattr(lib, put):
                setter = getattr(lib, put)
                saved.append((setter, int(getattr(lib, get)())))
                setter(1)
                break
    try:
        yield
    finally:
        for setter, n in saved:
            setter(n)


# ---- one frame -------------------------------------------------------------------------------
_local = threading.local()


def _scratch(n: int, d: int, n_sets: int) -> fast.Sums:
    """This thread's fast.Sums, overwritten frame after frame (fresh pages cost more than the
    arithmetic that fills them)."""
    f = getattr(_local, "frame", None)
    if f is None or f.Xc.shape != (n, d) or f.total.shape[0] != n_sets:
        f = _local.frame = fast.Sums.empty(n, d, n_sets)
    return f


def _frame(i: int, cur, prev, first, back, steps: np.ndarray, perm: np.ndarray, bounds: np.ndarray,
           keep: frozenset) -> tuple[dict, dict]:
    """Every set's per-frame fields (fields.PER_FRAME) of frame i. cur/prev/first/back are the bits
    of this frame, the previous (None for frame 0), frame 0 and the frame k back (None before frame
    k); set j is rows perm[bounds[j]:bounds[j + 1]]; speeds are kept for the frames in `keep`.
    fast.frame reads every row once; each field reads its value from those sums.

    Returns (values, speeds): values[name] (n_sets, *shape), NaN where undefined, and speeds[s] the
    per-step speeds of the COMPARED sets at kept frames."""
    n_rows, d = perm.size, cur.shape[1]
    gap = float(steps[i] - steps[i - 1]) if i else 1.0
    f = fast.sums(cur, prev, first, back, perm, bounds, out=_scratch(n_rows, d, len(SETS)))
    out = {m: np.full((len(SETS), *shape), np.nan) for m, shape in fields.shapes(d).items()}
    have = {"frame": True, "prev": prev is not None, "back": back is not None}
    speeds = {}
    for j, s in enumerate(SETS):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if a == b:
            continue
        v = fields.FastView(f, j, a, b, d, gap, moved=prev is not None)
        if prev is not None and i in keep and s in COMPARED:
            speeds[s] = v.speed.copy()  # before a field's quantiles reorder them
        for fld in fields.PER_FRAME:
            if have[fld.needs]:
                for m, x in zip(fld.names, fld.fast(v)):
                    out[m][j] = x
    return out, speeds


class _Series:
    """The series of one pass, filled frame by frame in step order; the "sequence" fields come from
    the stored centroids and axes at the end."""

    def __init__(self, steps: np.ndarray, sizes: dict[str, int], d: int):
        self.steps, self.T = steps, steps.size
        self.vals = {m: np.full((self.T, len(SETS), *shape), np.nan) for m, shape in fields.shapes(d).items()}
        self.sizes = sizes
        self.speeds_at = {s: [] for s in COMPARED}

    def add(self, i: int, res: tuple) -> None:
        vals, speeds = res
        for m, x in vals.items():
            self.vals[m][i] = x
        for s, sp in speeds.items():
            self.speeds_at[s].append(sp)

    @property
    def series(self) -> dict[str, np.ndarray]:
        out = {}
        gaps = np.diff(self.steps).astype(np.float64)
        for j, s in enumerate(SETS):
            per_set = {m: v[:, j] for m, v in self.vals.items() if m not in fields.INTERNAL}
            if self.sizes[s]:
                per_set.update(fields.sequence(self.vals["centroid"][:, j], self.vals["axis"][:, j], gaps))
            else:
                per_set.update({m: np.full(self.T, np.nan) for f in fields.FIELDS if f.needs == "sequence"
                                for m in f.names})
            out.update({f"{s}/{m}": per_set[m] for m in fields.SERIES})
        return {key: np.ascontiguousarray(v) for key, v in out.items()}


# ---- the pass --------------------------------------------------------------------------------
def _check_sets(sets: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    missing = [s for s in SETS if s not in sets]
    if missing:
        raise DucklingError(f"token sets: missing {', '.join(missing)} (need {', '.join(SETS)})")
    out = {s: np.asarray(sets[s], dtype=np.int64).ravel() for s in SETS}
    ids = np.concatenate([out[s] for s in SETS])
    if ids.size and (ids.min() < 0 or ids.max() >= rows):
        raise DucklingError(f"token sets: ids must lie in 0..{rows - 1}, got {ids.min()}..{ids.max()}")
    if np.unique(ids).size != ids.size:
        raise DucklingError("token sets: an id belongs to more than one set (or repeats)")
    return out


def _workers(asked: int | None, T: int, k: int, stride: int) -> int:
    """Worker processes for a pass: `asked`, or by default one per core (at most MAX_WORKERS) for a
    movie of PROCESS_MIN_FRAMES or more, none below (starting a process costs about a second);
    never more than the shared memory has room for (Docker gives 64 MB unless --shm-size says)."""
    if asked is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        asked = min(cores, MAX_WORKERS) if T >= PROCESS_MIN_FRAMES and cores > 1 else 0
    n = max(0, int(asked))
    room = parallel.shared_room()
    while n and room is not None and parallel.slots_needed(k, n) * stride > 0.9 * room:
        n -= 1
    return n


def compute(mv: movie.Movie, sets: dict[str, np.ndarray], precision: str, k: int = 10, n_test_steps: int = 4,
            progress: bool = False, verify: bool = True, workers: int | None = None,
            desc: str = "analyze") -> tuple[dict[str, np.ndarray], dict]:
    """Walk the movie once and return (series, summary): the Record without the run's files.

    sets: row ids of "phantom", "natural_dead" and "live" (disjoint, any may be empty); precision:
    the run's mode (names what an unchanged frame means); k: coherence window; n_test_steps: steps
    of the phantom-vs-natural-dead tests; verify: check each frame's checksum; workers: processes
    computing frames side by side (default: see _workers; 0: all in this process).
    """
    lattice.meaning(precision)  # an unknown mode fails here, not after the pass
    sets = _check_sets(sets, mv.rows)
    k = max(1, int(k))
    steps = np.asarray(mv.steps, dtype=np.int64)
    T, d = steps.size, mv.d
    workers = _workers(workers, T, k, movie.frame_stride(mv.rows, mv.d))  # bytes a ring slot takes
    perm = np.concatenate([sets[s] for s in SETS])
    bounds = np.cumsum([0] + [sets[s].size for s in SETS])
    sizes = {s: int(sets[s].size) for s in SETS}
    test_idx = test_step_indices(steps, n_test_steps)
    acc = _Series(steps, sizes, d)

    t0 = time.perf_counter()
    walk = parallel.Pass(mv, _frame, (steps, perm, bounds, frozenset(test_idx.tolist())), k=k, workers=workers,
                       verify=verify)
    with one_blas_thread(), tqdm(total=T, desc=desc, unit="frame", disable=not progress) as bar, \
            contextlib.closing(iter(walk)) as results:
        for i, res in results:
            acc.add(i, res)
            bar.update(1)
    if walk.frames_read != T:
        raise DucklingError(f"{mv.dir}: read {walk.frames_read} frames, the shards list {T}")
    seconds = time.perf_counter() - t0

    series = dict(acc.series, steps=steps, test_steps=steps[test_idx])
    planes = {}
    for s in SETS:
        if sizes[s]:
            plane = cloud.drift_plane(series[f"{s}/centroid"])
            series[f"{s}/path2d"] = plane["xy"]
            planes[s] = {"explained": plane["explained"]}
        else:
            series[f"{s}/path2d"] = np.full((T, 2), np.nan)
    for s in COMPARED:
        sp = acc.speeds_at[s]
        series[f"{s}/speeds_at_tests"] = np.stack(sp) if sp else np.zeros((test_idx.size, 0))
    summ = _summaries(series, steps, sizes, d, precision)
    summary = {"precision": precision, "k": k, "sets": sizes, "frames": int(T), "frames_read": walk.frames_read,
               **summ, "drift_plane": planes, "compare": _compare(series, steps, test_idx, sizes),
               "pass": {"seconds": round(seconds, 3), "frames_per_s": round(T / seconds, 2) if seconds else None,
                        "workers": workers, "verified": bool(verify),
                        "gram": "float32, rows centred on the float64 centroid (cloud.gyration_tensor)"}}
    summary["lifecycle"] = _lifecycle(series, steps, summ["fimbulwinter"])
    return series, summary


# ---- summaries -------------------------------------------------------------------------------
def _summaries(S: dict, steps: np.ndarray, sizes: dict, d: int, precision: str) -> dict:
    out = {"fimbulwinter": {}, "cooling": {}, "velocity_trend": {}, "coherence": {}}
    moved = steps.size > 1
    for s in SETS:
        if sizes[s] == 0:
            continue
        reg = S[f"{s}/regimes"][1:]
        if reg.shape[0]:
            out["fimbulwinter"][s] = lattice.fimbulwinter_verdict(steps[1:], reg[:, 0], reg[:, :3].sum(1),
                                                                  precision)
        out["cooling"][s] = cooling.late_slope(steps[1:], S[f"{s}/speed_q50"][1:])
        out["velocity_trend"][s] = cloud.velocity_trend(steps[1:], S[f"{s}/velocity"][1:])
        nz = S[f"{s}/n_zero"][1:]
        n_moving = int(np.nanmedian(sizes[s] - nz)) if np.isfinite(nz).any() else 0
        mean = float(np.nanmean(S[f"{s}/coherence"])) if moved and np.isfinite(S[f"{s}/coherence"]).any() \
            else math.nan
        ck = S[f"{s}/coherence_k"]
        out["coherence"][s] = {
            "mean": mean, "mean_k": float(np.nanmean(ck)) if np.isfinite(ck).any() else math.nan,
            "alignment": float(np.nanmean(S[f"{s}/alignment"])) if moved and np.isfinite(S[f"{s}/alignment"]).any()
            else math.nan,
            "expected_random": coherence.expected_random(n_moving, d),
            "interpretation": coherence.interpret(mean, n_moving, d),
        }
    return out


def _compare(S: dict, steps: np.ndarray, test_idx: np.ndarray, sizes: dict) -> dict:
    tests = []
    for j, i in enumerate(test_idx):
        a, b = S["phantom/speeds_at_tests"], S["natural_dead/speeds_at_tests"]
        t = compare.speed_tests(a[j] if j < len(a) else np.zeros(0), b[j] if j < len(b) else np.zeros(0))
        tests.append({"step": int(steps[i]), **t})
    angle = math.nan
    if sizes["natural_dead"] and sizes["phantom"] and steps.size > 1:
        cp, cd = S["phantom/centroid"], S["natural_dead/centroid"]
        angle = compare.drift_angle(cp[0], cp[-1], cd[0], cd[-1])
    if not sizes["natural_dead"]:
        answer = "This corpus leaves no natural dead tokens, so there is nothing to compare the phantoms with."
    elif not sizes["phantom"]:
        answer = "This run has no phantom rows, so there is nothing to compare the natural dead tokens with."
    elif steps.size < 2:
        answer = "The movie has a single frame: no token has moved yet, so there is nothing to compare."
    else:
        ps = [t.get("ks_p", math.nan) for t in tests]
        alike = all(p > 0.01 for p in ps if np.isfinite(p)) and any(np.isfinite(p) for p in ps)
        dp, dn = S["phantom/drift"][-1], S["natural_dead/drift"][-1]
        answer = (f"Phantom and natural dead tokens {'move alike' if alike else 'move differently'}: "
                  f"speed distributions {'agree' if alike else 'differ'} (KS test, p {'>' if alike else '<='} 0.01 "
                  f"at {'every' if alike else 'some'} tested step), their centroids drifted {dp:.3g} and {dn:.3g}, "
                  f"{angle:.0f} degrees apart.")
    return {"tests": tests, "drift_angle_deg": angle, "answer": answer}


def _read_evals(path) -> dict[str, np.ndarray]:
    ev = read_csv(path)
    if not ev:
        raise DucklingError(f"{path}: no validation losses yet; run `invoke train` to the end")
    return ev


def _learning(cfg: Config, cmeta: dict, tj: dict) -> dict:
    ev = _read_evals(cfg.run_dir / "evals.csv")
    final, best, H = float(ev["val_loss"][-1]), float(ev["val_loss"].min()), cmeta["unigram_entropy_nats"]
    learned = final < PLATEAU and final < H
    answer = (f"{'Yes' if learned else 'Not yet'}: validation loss {final:.3f} nats "
              f"({float(ev['val_bpb'][-1]):.3f} bits per byte) is {'below' if final < PLATEAU else 'above'} the old "
              f"plateau {PLATEAU} and {'below' if final < H else 'above'} the unigram floor {H:.3f}.")
    return {"final_val_loss": final, "best_val_loss": best, "final_val_bpb": float(ev["val_bpb"][-1]),
            "unigram_entropy": H, "plateau": PLATEAU, "learned": bool(learned), "answer": answer,
            "final_train_loss": tj.get("final_loss")}


def _lifecycle(S: dict, steps: np.ndarray, fimb: dict) -> dict:
    """Birth at init; drift from the first step the phantom centroid moves; cooling from the peak of
    the median speed; freezing from the step the frozen fraction stays above 50% (onset_50)."""
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


def definitions() -> dict[str, dict]:
    """What Methods prints: each series' definition (the function the pass is held to by
    tests/test_record.py) with the series it defines, then the functions that turned the series into
    summaries and verdicts: {name: {"series": [...], "doc": docstring}}."""
    out = {}
    for f in fields.FIELDS:
        entry = out.setdefault(f.definition.__name__, {"series": [], "doc": inspect.getdoc(f.definition) or ""})
        entry["series"] += [m for m in f.names if m not in fields.INTERNAL]
    for name, fn in (("drift_plane", cloud.drift_plane), ("late_slope", cooling.late_slope),
                     ("velocity_trend", cloud.velocity_trend), ("fimbulwinter_verdict", lattice.fimbulwinter_verdict),
                     ("expected_random", coherence.expected_random), ("speed_tests", compare.speed_tests),
                     ("drift_angle", compare.drift_angle), ("detector", detector.score)):
        out[name] = fields.documented((fn,))[fn.__name__]
    return out


# ---- the stage -------------------------------------------------------------------------------
def analyze(cfg: Config, force: bool = False, progress: bool = True, verify: bool = True,
            workers: int | None = None) -> dict:
    """Walk the movie once and write data/record/<run>/{series.npz, record.json}."""
    tmeta = cfg.run_dir / "train.json"
    if not tmeta.exists():
        raise DucklingError(f"{tmeta}: training of run {cfg.run} has not finished; run `invoke train --run {cfg.run}`")
    if not movie.movie_names(cfg.movie_dir):
        raise DucklingError(f"{cfg.movie_dir}: no movie for run {cfg.run}; run `invoke train --run {cfg.run}` "
                            f"(recording on)")
    tj = read_json(tmeta)
    cmeta = corpus.current_meta(cfg)
    if tj.get("fingerprint") != config.train_fingerprint(cfg, cmeta["sha256"], tj.get("precision", "")):
        raise DucklingError(f"{tmeta}: this training was made with other settings or another corpus than "
                            f"run {cfg.run} has now; run `invoke train --run {cfg.run}` first")
    movie.check_complete(cfg.movie_dir, "W", tj["fingerprint"], np.arange(tj["frames"]) * cfg.record_every,
                         f"re-record it with `invoke train --run {cfg.run} --force`")
    mv = movie.Movie(cfg.movie_dir)
    movie_sha = _movie_sha(mv)
    fp = fingerprint({"movie": movie_sha, "corpus": cmeta["sha256"], "train": tj.get("fingerprint"),
                      **cfg.subset("coherence_window", "test_steps", "live_vocab", "rows")})
    out_npz, out_json = cfg.record_dir / "series.npz", cfg.record_dir / "record.json"
    if not force and up_to_date(out_json, fp, out_npz):
        print(f"analyze: up to date, skipped ({out_json}; use --force to redo)")
        return read_json(out_json)
    if mv.rows != cfg.rows or mv.d != cfg.d_model:
        raise DucklingError(f"{cfg.movie_dir}: frames are {mv.rows} x {mv.d}, run {cfg.run} has {cfg.rows} x "
                            f"{cfg.d_model}; retrain with `invoke train --run {cfg.run} --force`")

    counts = corpus.load(cfg)["counts"][: cfg.live_vocab]
    dead_mask = tokenizer.load_dead_mask(cfg)
    sets = token_sets(cfg, counts, dead_mask)
    precision = tj["precision"]
    series, summ = compute(mv, sets, precision, k=cfg.coherence_window, n_test_steps=cfg.test_steps,
                           progress=progress, verify=verify, workers=workers, desc=f"analyze {cfg.run}")
    record = {
        "fingerprint": fp, "run": cfg.run, "config": cfg.to_dict(), "precision": precision, "k": summ["k"],
        "sets": summ["sets"],
        "provenance": {"movie_sha256": movie_sha, "corpus_sha256": cmeta["sha256"], "frames": summ["frames"],
                       "frames_read": summ["frames_read"], "verified": bool(verify),
                       "tokenizer_sha256": tokenizer.load_meta(cfg).get("tokenizer_sha256")},
        **{key: summ[key] for key in ("fimbulwinter", "cooling", "velocity_trend", "coherence", "drift_plane",
                                      "compare")},
        "learning": _learning(cfg, cmeta, tj), "lifecycle": summ["lifecycle"], "pass": summ["pass"],
        "detector": detector_over_time(mv, sets["phantom"], counts, cfg.separator_id, cfg.test_steps * 2),
        "spectrum": spectrum.over_run(mv, counts, cfg.separator_id, dead_mask),
        "shear": shear.over_time(mv, sets),
        "definitions": definitions(),
        "why": why.assemble(cfg, series, precision, counts, dead_mask),
    }
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, **series)
    write_json(out_json, json.loads(json.dumps(record, default=_jsonable)))
    verdict = summ["fimbulwinter"].get("phantom", {}).get("verdict", "n/a")
    p, n = summ["pass"], summ["sets"]
    print(f"analyze: {summ['frames']} frames in {p['seconds']:.1f}s ({p['frames_per_s']:.0f}/s), sets "
          f"{', '.join(f'{s} {n[s]}' for s in SETS)}; phantom verdict: {verdict} -> {cfg.record_dir}")
    return record


def detector_over_time(mv: movie.Movie, phantom: np.ndarray, counts: np.ndarray, separator_id: int,
                       n: int) -> dict:
    """detector.score at n log-spaced frames (and the last): how well W alone finds the natural dead
    tokens among the live ones, the phantom rows as the known unused reference."""
    live = np.setdiff1d(np.arange(counts.size), [separator_id])
    idx = np.unique(np.append(test_step_indices(mv.steps, n), len(mv) - 1))
    rows = [detector.score(lattice.to_float32(mv.frame(int(mv.steps[i]))), phantom, live, counts[live])
            for i in idx]
    k = rows[0]["k"] if rows else 0
    out = {"steps": mv.steps[idx].tolist(), "k": k, "base_rate": k / max(1, live.size)}  # precision by chance
    for kind in ("raw", "pc_removed"):
        out[kind] = {m: [r[kind][m] for r in rows] for m in ("auc", "precision_at_k", "spearman_count")}
    return out


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
