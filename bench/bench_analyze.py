"""How fast the analyze stage walks a full-size movie, against a plain read of the same files.

    python bench/bench_analyze.py                # 10% movie: 1,427 frames of 10,000 x 128 (3.7 GB)
    python bench/bench_analyze.py --frames 200   # a quick one
    python bench/bench_analyze.py --full --repeat 1   # 100% movie: 14,270 frames (36.5 GB of disk)

Writes a synthetic movie with movie.write_movie into a temp folder (tokens on random walks whose
step size decays over 4.5 decades, the phantoms drifting together, so the movement regimes change
from teleporting to frozen as in a run), then times:
  floor    a plain sequential read of the shard files in 16 MB chunks (readinto, nothing else),
           before and after the analyze runs; the faster one is the floor;
  analyze  stage.analyze on a run folder around the movie (verify on, as the stage runs), in a
           child process so its peak memory is its own; --repeat runs, the fastest reported.
Pages are dropped from the cache before each (fsync + posix_fadvise DONTNEED) and `fincore` says
how much was still cached. The machine's load average is recorded beside every run: other jobs
slow these numbers down. Results go to bench/results/analyze.json (--dry: printed only).
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, drop_cache, machine_info, write_result

ROWS, D, LIVE = 10_000, 128, 8_000
FRAMES_10PCT, FRAMES_FULL = 1_427, 14_270
CHUNK = 16 << 20
N_DEAD = 120  # natural dead ids, scattered over the live range


def synth_frames(n_frames: int, rows: int = ROWS, d: int = D, live: int = LIVE, seed: int = 0, pool: int = 16):
    """(step, float32 W): random walks with step size 3e-4 * 10**(-4.5 t / T); phantoms also drift
    along one shared direction and shrink a little, like weight decay. Noise comes from a pool of
    matrices rolled by a random row offset (drawing 1.28M normals per frame would dominate)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((rows, d), dtype=np.float32) * np.float32(0.02)
    noise = [rng.standard_normal((rows, d), dtype=np.float32) for _ in range(pool)]
    u = rng.standard_normal(d).astype(np.float32)
    u /= np.linalg.norm(u)
    T = max(1, n_frames - 1)
    for t in range(n_frames):
        if t:
            sig = np.float32(3e-4 * 10 ** (-4.5 * t / T))
            W += sig * np.roll(noise[t % pool], int(rng.integers(rows)), axis=0)
            W[live:] += (3 * sig) * u
            W[live:] *= np.float32(1 - 1e-5)
        yield t, W


def shard_files(movie_dir: Path) -> list[Path]:
    return sorted(movie_dir.glob("W_movie_*.safetensors"))


def cached_fraction(paths) -> float | None:
    """Share of the files' pages in the page cache, from util-linux `fincore` (None without it)."""
    if not shutil.which("fincore"):
        return None
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE",
                              *map(str, paths)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    res = size = 0
    for line in out.split("\n"):
        if line.strip():
            r, s = line.split()
            res, size = res + int(r), size + int(s)
    return round(res / size, 4) if size else None


def read_floor(paths, direct: bool = False) -> dict:
    """Read the files front to back in CHUNK reads into one buffer, doing nothing else: through the
    page cache (plain), or with O_DIRECT (direct; page-aligned buffer), as the analysis reads."""
    buf = mmap.mmap(-1, CHUNK)
    mv = memoryview(buf)
    n = 0
    t0 = time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY | (os.O_DIRECT if direct else 0))
        try:
            while k := os.readv(fd, [mv]):
                n += k
        finally:
            os.close(fd)
    dt = time.perf_counter() - t0
    return {"seconds": round(dt, 3), "bytes": n, "GB_per_s": round(n / dt / 1e9, 3)}


def make_run(root: Path, n_frames: int, seed: int = 0):
    """A run folder around the movie: the files analyze reads besides it (corpus counts with
    N_DEAD natural dead ids, train.json, evals.csv, tokenizer and corpus meta)."""
    from safetensors.numpy import save_file

    from duckling import config
    from duckling.config import Config
    from duckling.data import corpus, tokenizer
    from duckling.io import write_json

    cfg = Config(run="bench", profile="10pct", root=str(root), max_steps=n_frames - 1)
    cfg.save()
    rng = np.random.default_rng(seed + 1)
    counts = rng.integers(1, 1000, LIVE).astype(np.int64)
    counts[rng.choice(LIVE - 1, N_DEAD, replace=False)] = 0
    cfg.corpus_dir.mkdir(parents=True, exist_ok=True)
    save_file({"counts": counts}, str(cfg.corpus_dir / "tokens.safetensors"))
    write_json(cfg.tokenizer_dir / "meta.json", {"tokenizer_sha256": "bench"})
    save_file({"dead_mask": tokenizer.dead_mask(cfg.live_vocab, cfg.rows)}, str(cfg.dead_mask_path))
    write_json(cfg.corpus_dir / "meta.json", {"sha256": "bench", "unigram_entropy_nats": 6.5,
                                              "fingerprint": corpus.fingerprint_of(cfg)})
    write_json(cfg.run_dir / "train.json", {"precision": "fp32", "fingerprint": config.train_fingerprint(cfg, "bench", "fp32"),
                                            "final_loss": 2.0, "frames": n_frames})
    (cfg.run_dir / "evals.csv").write_text("step,val_loss,val_bpb\n1,3.0,1.2\n")
    return cfg


def _tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/<pid>/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _kb(path: str, keys: tuple) -> dict:
    out = dict.fromkeys(keys, 0)
    try:
        for line in open(path):
            key = line.split(":")[0]
            if key in out:
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


class PeakMemory(threading.Thread):
    """Samples this process and its worker processes every `every` s: the peak of their summed
    proportional set size (Pss: shared pages, such as the frame ring, split between the processes
    that map them, so the sum is what the analysis takes from the machine), and of this process's
    own anonymous and file-backed RSS."""

    def __init__(self, every: float = 0.05):
        super().__init__(daemon=True)
        self.every, self.stop = every, threading.Event()
        self.peak = {"Pss": 0, "RssAnon": 0, "RssFile": 0, "processes": 1}

    def run(self):
        me = os.getpid()
        while not self.stop.is_set():
            pids = _tree(me)
            pss = sum(_kb(f"/proc/{p}/smaps_rollup", ("Pss",))["Pss"] for p in pids)
            own = _kb("/proc/self/status", ("RssAnon", "RssFile"))
            for key, v in (("Pss", pss), ("processes", len(pids)), *own.items()):
                self.peak[key] = max(self.peak[key], v)
            time.sleep(self.every)


def child_analyze(root: str, workers: int | None, verify: bool) -> dict:
    from duckling.analyze import stage
    from duckling.config import Config

    cfg = Config.from_dict(json.loads((Path(root) / "runs" / "bench" / "config.json").read_text()))
    mem = PeakMemory()
    mem.start()
    r0, k0, t0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN), \
        time.perf_counter()
    rec = stage.analyze(cfg, force=True, progress=False, verify=verify, workers=workers)
    dt = time.perf_counter() - t0
    r1, k1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mem.stop.set()
    mem.join()
    cpu = lambda a, b: (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)
    return {"seconds": round(dt, 3), "cpu_seconds": round(cpu(r0, r1) + cpu(k0, k1), 3),
            "cpu_seconds_main": round(cpu(r0, r1), 3), "cpu_seconds_workers": round(cpu(k0, k1), 3),
            "system_seconds": round(r1.ru_stime - r0.ru_stime + k1.ru_stime - k0.ru_stime, 3), "pass": rec["pass"],
            "peak_pss_bytes": mem.peak["Pss"], "processes": mem.peak["processes"],
            "peak_rss_main_bytes": r1.ru_maxrss * 1024, "peak_rss_worker_bytes": k1.ru_maxrss * 1024,
            "peak_anon_main_bytes": mem.peak["RssAnon"], "peak_file_mapped_main_bytes": mem.peak["RssFile"],
            "major_faults": r1.ru_majflt - r0.ru_majflt + k1.ru_majflt - k0.ru_majflt,
            "verdicts": {s: v["verdict"] for s, v in rec["fimbulwinter"].items()},
            "frames_read": rec["provenance"]["frames_read"]}


def label(n: int) -> str:
    return {FRAMES_10PCT: "10pct", FRAMES_FULL: "100pct"}.get(n, f"{n}_frames")


def merged(name: str, n: int, res: dict) -> dict:
    """The results file with this movie size's entry replaced and the others kept."""
    path = RESULTS / f"{name}.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        old = {}
    runs = old.get("runs", {}) if isinstance(old.get("runs"), dict) else {}
    runs[label(n)] = res
    return {"note": "one entry per movie size; see bench/bench_analyze.py for what each number is",
            "targets": {"10pct_seconds": 30, "100pct_seconds": 300, "100pct_peak_memory_bytes": 2 << 30,
                        "100pct_ratio_to_floor": 2.0},
            "runs": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=FRAMES_10PCT)
    ap.add_argument("--full", action="store_true", help=f"the 100% movie ({FRAMES_FULL} frames, 36.5 GB)")
    ap.add_argument("--workers", default="auto", help="comma-separated worker process counts to time, e.g. 0,2 "
                                                      "(auto: what the analyze stage chooses)")
    ap.add_argument("--no-verify", action="store_true", help="also time analyze without checksums")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each case; the fastest is reported (other "
                                                           "jobs on the machine only ever slow a run down)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the movie (then --reuse DIR)")
    ap.add_argument("--reuse", default=None, help="a scratch folder from an earlier --keep run")
    ap.add_argument("--out", default="analyze", help="result name: bench/results/NAME.json")
    ap.add_argument("--dry", action="store_true", help="print the result, write no file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        root, workers, verify = args.child.split(",")
        print(json.dumps(child_analyze(root, None if workers == "auto" else int(workers), verify == "1")))
        return

    n = FRAMES_FULL if args.full else args.frames
    fb = ROWS * D * 2
    root = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="bench_analyze_", dir=args.dir))
    need = n * fb * 1.02 + (1 << 30)
    free = shutil.disk_usage(root).free
    res: dict = {"frames": n, "rows": ROWS, "d": D, "frame_bytes": fb, "movie_bytes": n * fb, "scratch": str(root),
                 "disk_free_bytes": free, "machine": machine_info(), "loadavg_before": os.getloadavg()}
    if not args.reuse and free < need:
        sys.exit(f"bench_analyze: {n} frames need {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free at {root}")
    print(f"bench_analyze: {n} frames ({n * fb / 1e9:.2f} GB) in {root}; load {os.getloadavg()[0]:.2f}")
    try:
        from duckling import movie
        from duckling.io import read_json

        cfg = make_run(root, n)
        if not args.reuse:
            t0 = time.perf_counter()
            movie.write_movie(cfg.movie_dir, synth_frames(n), shard_frames=128,
                              meta={"fingerprint": read_json(cfg.run_dir / "train.json")["fingerprint"]})
            dt = time.perf_counter() - t0
            res["write"] = {"seconds": round(dt, 2), "frames_per_s": round(n / dt, 1),
                            "GB_per_s": round(n * fb / dt / 1e9, 3)}
            print(f"  write   {dt:7.1f}s")
        paths = shard_files(cfg.movie_dir)
        res["shards"] = len(paths)
        floors: dict[str, list] = {"plain": [], "direct": []}

        def measure_floors() -> None:
            for kind in floors:
                dropped = drop_cache(paths)
                before, load = cached_fraction(paths), os.getloadavg()[0]
                f = read_floor(paths, direct=kind == "direct")
                f.update(cache_dropped=dropped, cached_before=before, load_avg_1min_before=round(load, 2))
                floors[kind].append(f)
                print(f"  floor   {f['seconds']:7.1f}s  {f['GB_per_s']:.2f} GB/s  {kind} read (cached before: "
                      f"{before}, load {load:.1f})")

        measure_floors()
        res["analyze"] = {}
        cases = [(w, True) for w in args.workers.split(",")] + ([("auto", False)] if args.no_verify else [])
        for workers, verify in cases:
            runs = []
            for _ in range(max(1, args.repeat)):
                drop_cache(paths)
                before = cached_fraction(paths)
                load = os.getloadavg()[0]
                out = subprocess.run([sys.executable, __file__, "--child", f"{root},{workers},{int(verify)}"],
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    sys.exit(out.stderr)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r.update(cached_before=before, load_avg_1min_before=round(load, 2),
                         load_avg_1min_after=round(os.getloadavg()[0], 2))
                runs.append(r)
                print(f"    {r['seconds']:7.1f}s  [workers {workers} -> {r['pass']['workers']}, verify {verify}, "
                      f"load {load:.1f}]")
            r = dict(min(runs, key=lambda x: x["seconds"]))
            r.update(frames_per_s=round(n / r["seconds"], 1), GB_per_s=round(n * fb / r["seconds"] / 1e9, 3),
                     ms_per_frame=round(r["seconds"] / n * 1e3, 2),
                     cpu_ms_per_frame=round(r["cpu_seconds"] / n * 1e3, 2), all_seconds=[x["seconds"] for x in runs])
            key = f"workers_{workers}" + ("" if verify else "_noverify")
            res["analyze"][key] = r
            print(f"  analyze {r['seconds']:7.1f}s  {r['ms_per_frame']:.2f} ms/frame  peak PSS "
                  f"{r['peak_pss_bytes'] / 2**20:.0f} MiB over {r['processes']} processes  cpu {r['cpu_seconds']:.0f}s "
                  f"({r['cpu_ms_per_frame']:.2f} ms/frame)  [{key}, best of {len(runs)}]")
        measure_floors()
        # the floor: the fastest plain read of the same files in this run, before or after the analyses;
        # the O_DIRECT read (as the analysis reads) is reported beside it
        for kind, fs in floors.items():
            res[f"floor_{kind}" if kind != "plain" else "floor"] = dict(min(fs, key=lambda f: f["seconds"]),
                                                                        all_seconds=[f["seconds"] for f in fs])
        for r in res["analyze"].values():
            r["ratio_to_floor"] = round(r["seconds"] / res["floor"]["seconds"], 2)
            r["ratio_to_direct_read"] = round(r["seconds"] / res["floor_direct"]["seconds"], 2)
            print(f"  ratio   {r['ratio_to_floor']:.2f}x the plain read, {r['ratio_to_direct_read']:.2f}x the direct read")
        res["loadavg_after"] = os.getloadavg()
        if args.dry:
            print(json.dumps(res["analyze"], indent=1))
        else:
            write_result(args.out, merged(args.out, n, res))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
