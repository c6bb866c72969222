"""The analyze stage: one streaming pass over a run's movie computes the Record.

Every metric is defined in its own module (lattice, cloud, cooling, coherence, compare); this
module only walks the frames once, applies them to each token set, and writes
data/record/<run>/series.npz (time series, one value per frame) and record.json (verdicts,
summaries, provenance). The report reads only these and the training metrics.

Token sets: `phantom` (rows >= live_vocab), `natural_dead` (live ids other than the separator
with zero count in the train stream) and `live` (ids that occur), the reference.
Rows are permuted once per frame so that each set is a contiguous slice (views, not copies).
With record_every > 1, displacements are between consecutive frames and velocities and speeds
are divided by the step gap, so they stay per step.

`compute` is the pass itself and needs only a Movie and the sets; `analyze` adds the run's files.
A reader thread reads, verifies (CRC-32) and permutes frames ahead; each frame's metrics are a
pure function of the frames it needs (itself, the previous, the first and the one k back), so
`workers` threads compute whole frames side by side and the results are gathered in step order.
Each set's rows are read once per frame by the compiled sweep in kernel.py (which releases the
GIL); the Gram matrix and its eigenpair come from BLAS/LAPACK on one thread per worker.
Memory: about k + 2 * workers + prefetch frames (2.6 MB of bits each), one float32 centred copy of
a set per worker, plus the series.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import inspect
import json
import math
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from duckling import cloud, coherence, compare, cooling, corpus, kernel, lattice, movie, tokenizer
from duckling.config import Config
from duckling.errors import DucklingError
from duckling.io import atomic_path, fingerprint, read_csv, read_json, up_to_date, write_json

SETS = ("phantom", "natural_dead", "live")
PLATEAU = 6.75  # the loss the previous model (Goldilocks) never got below
SCALARS = ("drift", "velocity", "rms_radius", "median_radius", "anisotropy", "effective_dim", "axis_turn",
           "speed_q10", "speed_q50", "speed_q90", "speed_mean", "cum_q10", "cum_q50", "cum_q90",
           "ulp_q50", "ulp_q90", "zero_cross_frac", "coherence", "coherence_k", "alignment", "n_zero")
COMPARED = ("phantom", "natural_dead")  # the sets whose speed distributions are tested
MAX_WORKERS = 8  # frames in flight cost memory and the GIL limits scaling beyond


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


test_step_indices.__test__ = False  # a helper, not a pytest test


def _movie_sha(mv: movie.Movie) -> str:
    """One hash over every frame's checksum: names the exact movie analysed."""
    h = hashlib.sha256()
    for step in mv.steps:
        h.update(f"{step}:{mv.checksum(int(step))};".encode())
    return h.hexdigest()


# ---- threads ---------------------------------------------------------------------------------
_BLAS_SETTERS = (("openblas_get_num_threads", "openblas_set_num_threads"),
                 ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                 ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                 ("openblas_get_num_threads64_", "openblas_set_num_threads64_"))


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with every loaded OpenBLAS (numpy's and scipy's) on one thread.

    The frame workers are the parallelism; OpenBLAS's own spinning threads on top of them are
    ruinous on a small busy machine (measured: a 7,900 x 128 float64 Gram took 267 ms with
    OpenBLAS's 2 threads under load, 9.7 ms with one). Linux only; elsewhere a no-op.
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


class _Reader(threading.Thread):
    """Reads, verifies and permutes frames ahead of the workers, `depth` frames at most.

    Page faults, the CRC-32 and the row gather release the GIL, so this overlaps with the metrics.
    Yields (step, bits) with the rows permuted.
    It maps one shard at a time (its own Movie, max_open=1): mapped pages count as resident memory.
    """

    def __init__(self, mv: movie.Movie, perm: np.ndarray, verify: bool, depth: int):
        super().__init__(name="analyze-reader", daemon=True)
        self.mv, self.perm, self.verify = movie.Movie(mv.dir, mv.name, max_open=1), perm, verify
        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.count = 0

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _advise(self, k: int) -> None:
        """Ask the kernel to start reading shard k now, so cold frames do not wait on the disk."""
        if k < len(self.mv.shards) and hasattr(os, "posix_fadvise"):
            try:
                fd = os.open(self.mv.shards[k].path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
                finally:
                    os.close(fd)
            except OSError:
                pass

    def run(self) -> None:
        starts = np.cumsum([len(s.steps) for s in self.mv.shards]).tolist()
        try:
            self._advise(0)
            self._advise(1)
            for step, bits in self.mv.frames(verify=self.verify):
                if self.count in starts:  # entering shard k + 1: read ahead the one after it
                    self._advise(starts.index(self.count) + 2)
                B = np.take(bits, self.perm, axis=0)
                self.count += 1
                if not self._put((step, B)):
                    return
            self._put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(e)

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        if self.ident is not None:
            self.join()


# ---- one frame -------------------------------------------------------------------------------
_local = threading.local()


def _scratch(size: int) -> np.ndarray:
    """This thread's float32 buffer for a centred set (reused frame after frame)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.size < size:
        buf = _local.buf = np.empty(size, np.float32)
    return buf


def _frame(cur, prev, first, back, gap: float, slices: dict[str, slice], keep_speeds: bool) -> dict:
    """Every set's metrics of one frame, except those that need the previous frame's results
    (drift, velocity, axis turn: `_Series.add` does those, in order). cur/prev/first/back are the
    permuted bits of this frame, the previous (None for frame 0), frame 0 and the frame k back (None
    before frame k). kernel.rows reads each set's rows once; the formulas are the metric modules'."""
    d = cur.shape[1]
    out = {}
    for s, sl in slices.items():
        n = sl.stop - sl.start
        if n == 0:
            continue
        B = cur[sl]
        k = kernel.rows(B, None if prev is None else prev[sl], first[sl], None if back is None else back[sl])
        c = k.total / n
        Xc, r2 = kernel.centred(B, c, out=_scratch(cur.size))
        r = {"centroid": c}
        r["rms_radius"], r["median_radius"] = cloud.radius_of(r2)
        r["anisotropy"], r["effective_dim"], r["axis"] = cloud.shape_of(cloud.gyration_tensor(Xc))
        del Xc
        r["cum_q10"], r["cum_q50"], r["cum_q90"] = cooling.quantiles(k.cum, cooling.QUANTILES, overwrite=True)
        if prev is not None:
            speed = k.speed / gap
            r["speed_q10"], r["speed_q50"], r["speed_q90"] = cooling.speed_quantiles(speed)
            r["speed_mean"] = speed.mean()
            r["regimes"] = lattice.regime_fractions(lattice.classify(k.L1, k.Linf, np.sqrt(k.L2sq), d))
            r["ulp_q50"], r["ulp_q90"] = cooling.quantiles(k.ulp_max, (0.5, 0.9), overwrite=True)
            r["zero_cross_frac"] = k.zero_cross.sum() / (n * d)
            coh = coherence.from_sums(k.unit, k.n_moving, n - k.n_moving, k.d_total / n)
            r["coherence"], r["alignment"], r["n_zero"] = coh["mean_cos"], coh["centroid_cos"], coh["n_zero"]
            if back is not None:
                r["coherence_k"] = coherence.from_sums(k.unit_k, k.n_moving_k, n - k.n_moving_k)["mean_cos"]
            if keep_speeds and s in COMPARED:
                r["speeds"] = speed
        out[s] = r
    return out


class _Series:
    """The series of one pass, filled frame by frame in step order."""

    def __init__(self, steps: np.ndarray, sizes: dict[str, int], d: int, test_idx: np.ndarray):
        self.steps, self.n, self.d, self.T = steps, sizes, d, steps.size
        nan = lambda *shape: np.full((self.T, *shape), np.nan)
        self.series = {f"{s}/{m}": nan() for s in SETS for m in SCALARS}
        for s in SETS:
            self.series[f"{s}/regimes"] = nan(len(lattice.REGIMES))
            self.series[f"{s}/centroid"] = nan(d)
        self.test_idx = test_idx
        self.speeds_at = {s: [] for s in COMPARED}
        self.c0, self.c_prev, self.axis_prev = {}, {}, {}

    def add(self, i: int, res: dict) -> None:
        S = self.series
        gap = float(self.steps[i] - self.steps[i - 1]) if i else 1.0
        for s, r in res.items():
            c, axis = r.pop("centroid"), r.pop("axis")
            S[f"{s}/centroid"][i] = c
            if "regimes" in r:
                S[f"{s}/regimes"][i] = r.pop("regimes")
            if "speeds" in r:
                self.speeds_at[s].append(r.pop("speeds"))
            for m, v in r.items():
                S[f"{s}/{m}"][i] = v
            if i == 0:
                self.c0[s] = c
                S[f"{s}/drift"][i] = 0.0
            else:
                S[f"{s}/drift"][i] = cloud.drift(self.c0[s], c)
                S[f"{s}/velocity"][i] = cloud.velocity(self.c_prev[s], c, gap)
                S[f"{s}/axis_turn"][i] = cloud.axis_turn(self.axis_prev[s], axis)
            self.c_prev[s], self.axis_prev[s] = c, axis


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


def compute(mv: movie.Movie, sets: dict[str, np.ndarray], precision: str, k: int = 10, n_test_steps: int = 4,
            progress: bool = False, verify: bool = True, workers: int | None = None, prefetch: int = 4,
            desc: str = "analyze") -> tuple[dict[str, np.ndarray], dict]:
    """Walk the movie once and return (series, summary): the Record without the run's files.

    sets: row ids of "phantom", "natural_dead" and "live" (disjoint, any may be empty); precision:
    the run's mode (names what an unchanged frame means); k: coherence window; n_test_steps: steps
    of the phantom-vs-natural-dead tests; verify: check each frame's checksum; workers: frames
    computed side by side (default: one per core, at most MAX_WORKERS; 0: all in this thread).
    """
    lattice.meaning(precision)  # an unknown mode fails here, not after the pass
    workers = min(os.cpu_count() or 1, MAX_WORKERS) if workers is None else max(0, int(workers))
    sets = _check_sets(sets, mv.rows)
    k = max(1, int(k))
    steps = np.asarray(mv.steps, dtype=np.int64)
    T, d = steps.size, mv.d
    perm = np.concatenate([sets[s] for s in SETS])
    bounds = np.cumsum([0] + [sets[s].size for s in SETS])
    slices = {s: slice(int(bounds[j]), int(bounds[j + 1])) for j, s in enumerate(SETS)}
    sizes = {s: int(sets[s].size) for s in SETS}
    test_idx = test_step_indices(steps, n_test_steps)
    keep = set(test_idx.tolist())
    acc = _Series(steps, sizes, d, test_idx)

    t0 = time.perf_counter()
    reader = _Reader(mv, perm, verify, prefetch)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="analyze") if workers > 0 else None
    bar = tqdm(total=T, desc=desc, unit="frame", disable=not progress)
    pending: deque = deque()
    held: dict[int, tuple] = {}  # frames still needed as prev, back or first

    def collect():
        i, fut = pending.popleft()
        acc.add(i, fut.result() if pool else fut)
        bar.update(1)

    try:
        with one_blas_thread():
            reader.start()
            for i, (step, B) in enumerate(reader):
                if i >= T or step != steps[i]:
                    raise DucklingError(f"{mv.dir}: frame {i} has step {step}, expected "
                                        f"{steps[i] if i < T else 'none'}")
                held[i] = B
                gap = float(steps[i] - steps[i - 1]) if i else 1.0
                args = (held[i], held.get(i - 1), held[0], held.get(i - k) if i >= k else None, gap, slices,
                        i in keep)
                pending.append((i, pool.submit(_frame, *args) if pool else _frame(*args)))
                if i - k > 0:
                    del held[i - k]  # later frames reach back no further than i + 1 - k
                while pending and (not pool or len(pending) > 2 * workers or pending[0][1].done()):
                    collect()
            while pending:
                collect()
    finally:
        reader.close()
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    if reader.count != T:
        raise DucklingError(f"{mv.dir}: read {reader.count} frames, the shards list {T}")
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
    summary = {"precision": precision, "k": k, "sets": sizes, "frames": int(T), "frames_read": reader.count,
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


DEFINED = {"centroid": cloud.centroid, "drift": cloud.drift, "velocity": cloud.velocity, "radius": cloud.radius,
           "gyration": cloud.gyration, "shape": cloud.shape, "gyration_tensor": cloud.gyration_tensor,
           "shape_of": cloud.shape_of, "axis_turn": cloud.axis_turn,
           "velocity_trend": cloud.velocity_trend, "drift_plane": cloud.drift_plane, "speed": cooling.speed,
           "cumulative_displacement": cooling.cumulative_displacement, "late_slope": cooling.late_slope,
           "ordinals": lattice.ordinals, "lattice_displacement": lattice.lattice_displacement,
           "classify": lattice.classify, "ulp": lattice.ulp, "ulp_displacement": lattice.ulp_displacement,
           "zero_crossings": lattice.zero_crossings, "fimbulwinter_verdict": lattice.fimbulwinter_verdict,
           "coherence": coherence.coherence, "coherence_from_sums": coherence.from_sums,
           "expected_random": coherence.expected_random,
           "speed_tests": compare.speed_tests, "drift_angle": compare.drift_angle}


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
    mv = movie.Movie(cfg.movie_dir)
    tj = read_json(tmeta)
    cmeta = corpus.load_meta(cfg)
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

    sets = token_sets(cfg, corpus.load(cfg)["counts"])
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
        "definitions": {key: inspect.getdoc(f) or "" for key, f in DEFINED.items()},
    }
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, **series)
    write_json(out_json, json.loads(json.dumps(record, default=_jsonable)))
    verdict = summ["fimbulwinter"].get("phantom", {}).get("verdict", "n/a")
    p, n = summ["pass"], summ["sets"]
    print(f"analyze: {summ['frames']} frames in {p['seconds']:.1f}s ({p['frames_per_s']:.0f}/s), sets "
          f"{', '.join(f'{s} {n[s]}' for s in SETS)}; phantom verdict: {verdict} -> {cfg.record_dir}")
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
