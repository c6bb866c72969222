"""How fast the movie writes and reads, against plain raw files of the same bytes.

    python bench/bench_movie.py                 # 256 full-size frames (655 MB) x 3 repeats, under a minute
    python bench/bench_movie.py --frames 2000   # a longer run

Write: MovieWriter (bf16 rounding, checksum, shards, manifest) vs rounding each frame and appending
it to one raw file. Then a training loop of about --step-ms of matmuls per step, with and without
recording every step, and the time `write` holds that loop. Read: Movie.frames() with and without verify, and
random Movie.frame(), vs sequential readinto of the raw file; warm (page cache) and cold (pages
dropped with posix_fadvise, best effort). Every reader touches one value per 4 KiB page, so a
memory map cannot win by not reading. Each case keeps the best of --repeat runs (other
load on the machine only ever slows a run down). Results go to bench/results/movie.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_name, drop_cache  # noqa: E402

from duckling.movie import Movie, MovieWriter

RESULTS = Path(__file__).resolve().parent / "results" / "movie.json"


def touch(bits: np.ndarray) -> int:
    """One value per page: forces every page of the frame in, costs almost nothing else."""
    return int(bits.reshape(-1)[::2048].sum(dtype=np.uint64))




def timed(fn, *a) -> float:
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rate(n_frames: int, frame_bytes: int, seconds: float) -> dict:
    return {"seconds": round(seconds, 4), "frames_per_s": round(n_frames / seconds, 1),
            "MB_per_s": round(n_frames * frame_bytes / seconds / 1e6, 1)}


def bench_hashes(frame_bytes: int, reps: int = 50) -> dict:
    data = memoryview(os.urandom(frame_bytes))
    fns = {"sha256": lambda: hashlib.sha256(data).hexdigest(),
           "blake2b": lambda: hashlib.blake2b(data).hexdigest(),
           "crc32": lambda: zlib.crc32(data)}
    out = {}
    for name, f in fns.items():
        f()
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        dt = (time.perf_counter() - t0) / reps
        out[name] = {"ms_per_frame": round(dt * 1e3, 3), "GB_per_s": round(frame_bytes / dt / 1e9, 2)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--shard-frames", type=int, default=128)
    ap.add_argument("--queue-frames", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=64, help="steps of the simulated training loop")
    ap.add_argument("--step-ms", type=float, default=50.0, help="compute per simulated training step")
    ap.add_argument("--repeat", type=int, default=3, help="each measurement's repeats (the best is kept)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    n, rows, d = args.frames, args.rows, args.d
    fb = rows * d * 2
    torch.manual_seed(0)
    pool = [torch.randn(rows, d) * 0.02 for _ in range(4)]  # cycled: content does not change the cost

    scratch = Path(tempfile.mkdtemp(prefix="bench_movie_", dir=args.dir))
    res: dict = {"frames": n, "rows": rows, "d": d, "frame_bytes": fb, "shard_frames": args.shard_frames,
                 "queue_frames": args.queue_frames, "repeat": args.repeat, "scratch": str(scratch),
                 "note": "best of the repeats for each case; writes end in the page cache (no fsync) "
                         "for both sides",
                 "loadavg_before": os.getloadavg()}
    raw, mdir = scratch / "raw.bin", scratch / "movie"

    def write_raw():
        with open(raw, "wb") as f:
            f.writelines(pool[i % 4].to(torch.bfloat16).view(torch.int16).numpy().data for i in range(n))

    def write_movie():
        shutil.rmtree(mdir, ignore_errors=True)
        with MovieWriter(mdir, rows, d, args.shard_frames, queue_frames=args.queue_frames) as w:
            for i in range(n):
                w.write(i, pool[i % 4])

    def read_raw():
        buf = np.empty((rows, d), dtype=np.uint16)
        with open(raw, "rb", buffering=0) as f:
            for _ in range(n):
                f.readinto(memoryview(buf).cast("B"))
                touch(buf)

    def read_movie(verify=False):
        for _, bits in Movie(mdir).frames(verify=verify):
            touch(bits)

    picks = np.random.default_rng(0).permutation(n)[:min(64, n)]

    def random_raw():
        buf = np.empty((rows, d), dtype=np.uint16)
        with open(raw, "rb", buffering=0) as f:
            for s in picks:
                f.seek(int(s) * fb)
                f.readinto(memoryview(buf).cast("B"))
                touch(buf)

    def random_movie():
        mv = Movie(mdir)
        for s in picks:
            touch(mv.frame(int(s)))

    # a training loop that records every step: matmuls sized to about --step-ms per step
    a, b = torch.randn(384, 384), torch.randn(384, 384)

    def compute(k):
        for _ in range(k):
            a.copy_(torch.tanh(a @ b) * 0.5)

    compute(4)
    per = min(timed(compute, 5) for _ in range(5)) / 5
    k = max(1, round(args.step_ms / 1e3 / per))
    stall: list[float] = []

    def train(record):
        if not record:
            for _ in range(args.train_steps):
                compute(k)
            return
        with MovieWriter(scratch / "train", rows, d, args.shard_frames, queue_frames=args.queue_frames) as w:
            for s in range(args.train_steps):
                compute(k)
                t1 = time.perf_counter()
                w.write(s, pool[s % 4])
                stall.append(time.perf_counter() - t1)
        shutil.rmtree(scratch / "train")

    cases = {"write_raw": (write_raw,), "write_movie": (write_movie,),
             "train_plain": (train, False), "train_recording": (train, True),
             "warm_raw": (read_raw,), "warm_movie": (read_movie,), "warm_movie_verify": (read_movie, True),
             "cold_raw": (read_raw,), "cold_movie": (read_movie,), "cold_movie_verify": (read_movie, True),
             "warm_random_raw": (random_raw,), "warm_random_movie": (random_movie,)}
    times = {c: [] for c in cases}
    cpu = {c: [] for c in cases}  # process CPU seconds (all threads): what recording costs, load or not
    dropped = True
    try:
        res["hash"] = bench_hashes(fb)
        for _ in range(args.repeat):
            for c, (fn, *a_) in cases.items():
                if c.startswith("warm"):
                    fn(*a_)  # fill the page cache
                if c.startswith("cold"):
                    dropped &= drop_cache([raw, *mdir.glob("W_movie_*.safetensors")])
                c0 = cpu_seconds()
                times[c].append(timed(fn, *a_))
                cpu[c].append(cpu_seconds() - c0)
        med = {c: float(np.min(v)) for c, v in times.items()}  # best of: least disturbed by other load
        cms = {c: float(np.min(v)) / n * 1e3 for c, v in cpu.items()}
        res["write"] = {"baseline_raw": rate(n, fb, med["write_raw"]),
                        "movie": rate(n, fb, med["write_movie"]),
                        "movie_vs_baseline_speed": round(med["write_raw"] / med["write_movie"], 3),
                        "cpu_ms_per_frame": {"baseline_raw": round(cms["write_raw"], 3),
                                             "movie": round(cms["write_movie"], 3)}}
        st = np.array(stall) * 1e3
        res["training_loop"] = {
            "steps": args.train_steps, "torch_threads": torch.get_num_threads(),
            "ms_per_step_plain": round(med["train_plain"] / args.train_steps * 1e3, 3),
            "ms_per_step_recording": round(med["train_recording"] / args.train_steps * 1e3, 3),
            "slowdown": round(med["train_recording"] / med["train_plain"] - 1, 4),
            "recording_cpu_ms_per_step":
                round((min(cpu["train_recording"]) - min(cpu["train_plain"])) / args.train_steps * 1e3, 3),
            "caller_ms_per_write": {"mean": round(float(st.mean()), 3), "p50": round(float(np.median(st)), 3),
                                    "p99": round(float(np.percentile(st, 99)), 3)}}
        read = {}
        for temp in ("warm", "cold"):
            out = {"baseline_raw": rate(n, fb, med[f"{temp}_raw"]),
                   "movie": rate(n, fb, med[f"{temp}_movie"]),
                   "movie_verify": rate(n, fb, med[f"{temp}_movie_verify"])}
            for key in ("movie", "movie_verify"):
                out[f"{key}_vs_baseline_speed"] = round(med[f"{temp}_raw"] / med[f"{temp}_{key}"], 3)
            read[temp] = out
        read["cold"]["pages_dropped"] = dropped
        read["random_warm"] = {"baseline_raw_seek": rate(len(picks), fb, med["warm_random_raw"]),
                               "movie_frame": rate(len(picks), fb, med["warm_random_movie"]),
                               "movie_vs_baseline_speed":
                                   round(med["warm_random_raw"] / med["warm_random_movie"], 3)}
        res["read"] = read
        mv = Movie(mdir)
        res["verify_all"] = rate(n, fb, timed(lambda: mv.verify(progress=False)))
        res["disk_bytes"] = {"raw": raw.stat().st_size,
                             "movie": sum(p.stat().st_size for p in mdir.iterdir())}
        res["raw_seconds"] = {c: [round(t, 4) for t in v] for c, v in times.items()}
        res["raw_cpu_seconds"] = {c: [round(t, 4) for t in v] for c, v in cpu.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    import safetensors

    res["machine"] = {"platform": platform.platform(), "processor": cpu_name(), "cpu_count": os.cpu_count(),
                      "cpus_usable": len(os.sched_getaffinity(0)),
                      "python": platform.python_version(), "torch": torch.__version__,
                      "numpy": np.__version__,
                      "safetensors": safetensors.__version__}
    res["loadavg_after"] = os.getloadavg()
    res["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
