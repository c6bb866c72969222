#!/usr/bin/env python3
"""Training throughput: Duckling's step with W recorded every step, against the plain eager loop of
../shared/bench/reference_train.py (same model, same batch, no recording), measured in one run.

Also Duckling without recording and without the forces log, so each overhead stands on its own, and,
where the step runs as a CUDA graph (on CUDA, or `--graph on`), Duckling's eager step with recording,
so what the graph buys shows too. Tokens are random live ids, as in the reference, so only the cost
of the step is measured. Writes bench/results/train[-DEVICE].json.

    python bench/bench_train.py [--steps 10 --warmup 3 --rounds 3 --device cpu]
    python bench/bench_train.py --full-run 10pct    # a whole run end to end, then its analysis
    python bench/bench_train.py --disk-run 100pct   # the training against a plain write of the movie's bytes

Each variant runs once per round, rounds interleaved (ABC, CBA, ...); the ratios are taken within a
round and reported as their median and range, so a noisy machine shows as a wide range instead of
flipping the answer. Every recorded round's movie is reduced to one digest of its frame checksums:
the same digest in every round is the same movie bytes, run to run.

--full-run 10pct builds the tokenizer and the synthetic corpus, trains, verifies every frame, checks
the last frame against the checkpoint's W, and times the analyze stage (twice: numba's compile is in
the first) against a plain read of the same shards. --disk-run 100pct trains on random ids (the
corpus does not change the step's cost) after timing a plain sequential write of the movie's bytes
to the same disk, with and without fsync (then deleted: both would not fit on a 64 GB disk).
bench/gpu.sh runs all three.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from common import machine_info, write_result

from duckling import config, movie
from duckling.data import corpus, tokenizer
from duckling.io import write_json
from duckling.train import loop

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "reference_train.py"
TINY = {"n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64, "ctx": 64, "batch_size": 4, "val_tokens": 4096,
        "eval_batches": 2, "shard_frames": 10, "sample_tokens": 4, "max_steps": 16, "threads": 1}  # --tiny: small


def fake_corpus(cfg) -> None:
    """Random live ids as the corpus: the reference trains on the same."""
    rng = np.random.default_rng(0)
    train_ids = rng.integers(0, cfg.live_vocab - 1, cfg.train_tokens).astype(np.uint16)
    val = rng.integers(0, cfg.live_vocab - 1, cfg.ctx * cfg.batch_size + 1).astype(np.uint16)
    counts = np.bincount(train_ids, minlength=cfg.live_vocab).astype(np.int64)
    cfg.corpus_dir.mkdir(parents=True, exist_ok=True)
    save_file({"train": train_ids, "val": val, "counts": counts}, str(cfg.corpus_dir / "tokens.safetensors"))
    write_json(cfg.tokenizer_dir / "meta.json", {"tokenizer_sha256": "random"})
    save_file({"dead_mask": tokenizer.dead_mask(cfg.live_vocab, cfg.rows)}, str(cfg.dead_mask_path))
    write_json(cfg.corpus_dir / "meta.json", {"sha256": "random", "val_tokens": int(val.size),
                                              "val_bytes": int(val.size) * 4, "unigram_entropy_nats": 0.0,
                                              "fingerprint": corpus.fingerprint_of(cfg)})


def movie_digest(cfg) -> str:
    """One sha256 over every frame's stored checksum, in step order: equal digests, equal movies."""
    mv = movie.Movie(cfg.movie_dir)
    return hashlib.sha256("".join(mv.checksum(int(s)) for s in mv.steps).encode()).hexdigest()[:16]


def timed_run(cfg, sync_at: tuple = (), **kw) -> tuple[dict, list[float]]:
    """loop.run with the clock read after every step; the final eval, checkpoint and samples come after.
    A CUDA step has only been queued when the loop moves on, so at the steps in `sync_at` (and the first
    and last) the clock waits for the GPU: the times between those marks are the GPU's own."""
    import torch

    marks: list[float] = []
    waits = {1, cfg.steps, *sync_at} if cfg.resolved_device().startswith("cuda") else set()

    def on_step(done: int) -> None:
        if done in waits:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    summary = loop.run(cfg, force=True, on_step=on_step, **kw)
    return summary, marks


def duckling_tps(a, root: str, record: bool, graph: str, compile_: bool = False, log_forces: bool = True) -> dict:
    n = a.steps + a.warmup
    over = {**(TINY if a.tiny else {}), "max_steps": n, "device": a.device, "eval_every": 10**9,
            "checkpoint_every": 10**9, "compile": compile_, "graph": graph, "prompts": [], "log_forces": log_forces}
    cfg = config.build("demo", run=f"bench-{record}-{graph}-{compile_}-{log_forces}", root=root, overrides=over)
    cfg.save()
    fake_corpus(cfg)
    _, marks = timed_run(cfg, (a.warmup,), progress=False, record=record)
    dt = marks[-1] - marks[a.warmup - 1]
    timed = len(marks) - a.warmup
    out = {"steps": timed, "seconds": round(dt, 4), "tokens_per_s": round(timed * cfg.tokens_per_step / dt, 1)}
    return {**out, "movie": movie_digest(cfg)} if record else out


def reference_tps(a) -> dict:
    small = ["--batch", str(TINY["batch_size"]), "--ctx", str(TINY["ctx"])] if a.tiny else []
    out = subprocess.run([sys.executable, str(a.reference), "--steps", str(a.steps), "--warmup", str(a.warmup),
                          "--device", a.device, *small], capture_output=True, text=True, check=True,
                         env={**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"})  # as the image sets it
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(xs: list[float]) -> dict:
    """Median and range of per-round values: the answer, and how far one round could move it."""
    xs = sorted(xs)
    return {"median": round(float(np.median(xs)), 3), "min": round(xs[0], 3), "max": round(xs[-1], 3),
            "rounds": [round(x, 3) for x in xs]}


def gpu_info() -> dict:
    """The GPU, its driver and the CUDA torch was built with ({} without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        driver = None
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "driver": driver, "cuda": torch.version.cuda, "sm_count": p.multi_processor_count,
            "memory_gib": round(p.total_memory / 2**30, 1), "torch": torch.__version__}


def variants(a) -> dict:
    """name -> f(root) -> result, for the interleaved rounds."""
    graphed = a.graph == "on" or (a.graph == "auto" and a.device.startswith("cuda"))
    v = {"reference": lambda root: reference_tps(a),
         "duckling_recording": lambda root: duckling_tps(a, root, True, a.graph),
         "duckling_no_recording": lambda root: duckling_tps(a, root, False, a.graph),
         "duckling_no_forces": lambda root: duckling_tps(a, root, True, a.graph, log_forces=False)}
    if graphed:  # what the graph buys: the same step, eager
        v["duckling_recording_eager"] = lambda root: duckling_tps(a, root, True, "off")
    if a.compile:
        v["duckling_recording_compiled"] = lambda root: duckling_tps(a, root, True, a.graph, compile_=True)
    return v


def interleaved(a) -> dict:
    """(a) Duckling against the reference, (b) the overheads, in interleaved rounds; the movie digests."""
    fns = variants(a)
    runs: dict[str, list[dict]] = {k: [] for k in fns}
    with tempfile.TemporaryDirectory(dir=a.scratch) as root:
        for r in range(a.rounds):  # interleaved, order reversed every other round: drift hits all alike
            for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                runs[name].append(fns[name](root))
    tps = {k: [x["tokens_per_s"] for x in v] for k, v in runs.items()}
    res = {k: {"tokens_per_s": spread(v)} for k, v in tps.items()}
    # ratios within a round (same minute of the machine's life), then their median across rounds
    res["ratio_vs_reference"] = spread([d / r for d, r in zip(tps["duckling_recording"], tps["reference"])])
    res["recording_overhead_pct"] = spread([100 * (n / d - 1) for n, d in
                                            zip(tps["duckling_no_recording"], tps["duckling_recording"])])
    res["forces_overhead_pct"] = spread([100 * (n / d - 1) for n, d in
                                         zip(tps["duckling_no_forces"], tps["duckling_recording"])])
    if "duckling_recording_eager" in tps:
        res["graph_speedup"] = spread([g / e for g, e in zip(tps["duckling_recording"],
                                                             tps["duckling_recording_eager"])])
    digests = {k: sorted({x["movie"] for x in v}) for k, v in runs.items() if v and "movie" in v[0]}
    res["movie_digests"] = digests
    res["same_movie_every_round"] = all(len(d) == 1 for d in digests.values())
    return res


def full_config(a, root: str, profile: str, **over):
    """The profile's run as `invoke` would build it, on --device with --graph (--tiny: the smoke model, 30 steps)."""
    overrides = {**(TINY if a.tiny else {}), "device": a.device, "graph": a.graph, **over}
    cfg = config.build(profile, run=profile, root=root, overrides=overrides)
    cfg.save()
    return cfg


def train_numbers(cfg, summary: dict, marks: list[float], t0: float, t1: float) -> dict:
    return {"steps": cfg.steps, "stage_seconds": round(t1 - t0, 2),
            "loop_seconds": round(marks[-1] - marks[0], 2), "first_step_seconds": round(marks[0] - t0, 2),
            "steps_per_s": round((len(marks) - 1) / max(marks[-1] - marks[0], 1e-9), 1),
            "tokens_per_s": round((len(marks) - 1) * cfg.tokens_per_step / max(marks[-1] - marks[0], 1e-9), 1),
            "frames": summary["frames"], "cuda_graph": summary.get("cuda_graph"),
            "final_val_loss": summary["final_val_loss"], "movie_bytes": sum(p.stat().st_size for p in
                                                                         cfg.movie_dir.glob("*.safetensors"))}


def checked_movie(cfg) -> dict:
    """Every frame verified against its checksum; the last one is the checkpoint's W in bf16."""
    import torch

    from duckling.train.checkpoint import load_checkpoint

    t0 = time.perf_counter()
    mv = movie.Movie(cfg.movie_dir)
    n = mv.verify(progress=False)
    w = load_checkpoint(cfg.run_dir / "checkpoint.pt", "cpu", cfg.run)["model"]["wte.weight"]
    last = np.array_equal(mv.frame(cfg.steps), w.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    return {"frames_verified": n, "all_frames": n == cfg.steps + 1, "last_frame_is_checkpoint_W": bool(last),
            "verify_seconds": round(time.perf_counter() - t0, 2)}


def analysis(cfg) -> dict:
    """(e) the analyze stage on the run's movie, cold (numba compiles) and warm, against a plain read."""
    from bench_analyze import read_floor, shard_files
    from common import drop_cache

    from duckling.analyze.stage import analyze

    out = {"cpu_count": os.cpu_count()}
    shards = shard_files(cfg.movie_dir)
    for name in ("cold", "warm"):
        out[f"page_cache_dropped_{name}"] = drop_cache(shards)
        t0 = time.perf_counter()
        rec = analyze(cfg, force=True, progress=False)
        out[f"analyze_{name}_seconds"] = round(time.perf_counter() - t0, 2)
    out["frames_read"] = rec["provenance"]["frames_read"]
    out["frames_per_s_warm"] = round(out["frames_read"] / out["analyze_warm_seconds"], 1)
    drop_cache(shards)
    out["plain_read"] = read_floor(shards)
    out["ratio_warm_vs_plain_read"] = round(out["analyze_warm_seconds"] / out["plain_read"]["seconds"], 3)
    return out


def end_to_end(a, root: str) -> dict:
    """(c) tokenizer, synthetic corpus, training with the movie, the movie checked; then (e)."""
    cfg = full_config(a, root, a.full_run, corpus_source="synthetic", tokenizer_path=a.gpt2 or "")
    res, t0 = {"run": cfg.run, "profile": a.full_run, "corpus": "synthetic"}, time.perf_counter()
    tokenizer.build(cfg)
    res["tokenizer_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    corpus.build(cfg, progress=False)
    res["corpus_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    summary, marks = timed_run(cfg, progress=False)
    res["train"] = train_numbers(cfg, summary, marks, t0, time.perf_counter())
    res["movie"] = checked_movie(cfg)
    if not a.no_analyze:
        res["analysis"] = analysis(cfg)
    return res


def plain_write(path: Path, n_bytes: int, chunk: int) -> dict:
    """The floor: the same bytes written front to back in frame-sized writes, nothing else; then fsync."""
    buf = np.random.default_rng(0).integers(0, 2**16, chunk // 2, dtype=np.uint16).tobytes()
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        left = n_bytes
        while left > 0:
            left -= f.write(buf[: min(chunk, left)])
        t1 = time.perf_counter()
        os.fsync(f.fileno())
    t2 = time.perf_counter()
    path.unlink()
    return {"bytes": n_bytes, "write_seconds": round(t1 - t0, 4), "write_fsync_seconds": round(t2 - t0, 4),
            "GB_per_s": round(n_bytes / (t1 - t0) / 1e9, 3), "GB_per_s_with_fsync": round(n_bytes / (t2 - t0) / 1e9, 3)}


def movie_bytes(cfg) -> int:
    return movie.estimate_bytes(cfg.rows, cfg.d_model, cfg.steps // cfg.record_every + 1, cfg.shard_frames)


def fitting_profile(a, root: str, budget: float) -> tuple[str, dict]:
    """The largest of --disk-run, 50pct, 10pct whose floor and training fit in `budget` seconds at the
    disk's speed (a 2 GB probe write with fsync; floor + training at 1.5x + slack = 2.7 writes)."""
    probe_bytes = (20 << 20) if a.tiny else (2 << 30)
    probe = plain_write(Path(root) / "probe.bin", probe_bytes, 1 << 20)
    for profile in dict.fromkeys([a.disk_run, "50pct", "10pct"]):
        need = 2.7 * movie_bytes(config.build(profile, overrides=TINY if a.tiny else {})) / (
            probe["GB_per_s_with_fsync"] * 1e9)
        if need <= budget:
            break
    return profile, {**probe, "budget_seconds": budget, "predicted_seconds": round(need, 1)}


def against_the_disk(a, root: str) -> dict:
    """(d) the whole training with its movie against a plain sequential write of the movie's bytes."""
    profile, probe = fitting_profile(a, root, a.budget) if a.budget else (a.disk_run, None)
    cfg = full_config(a, root, profile, prompts=[])
    fake_corpus(cfg)
    frame = cfg.rows * cfg.d_model * 2
    n_bytes = movie_bytes(cfg)
    res = {"run": cfg.run, "profile": profile, "asked_for": a.disk_run, "disk_probe": probe,
           "corpus": "random live ids (the step's cost does not depend on them)"}
    os.sync()
    res["floor"] = plain_write(Path(root) / "floor.bin", n_bytes, frame)
    os.sync()
    t0 = time.perf_counter()
    summary, marks = timed_run(cfg, progress=False)
    t1 = time.perf_counter()
    os.sync()  # what the page cache still held of the movie, onto the disk
    res["train"] = {**train_numbers(cfg, summary, marks, t0, t1), "stage_plus_sync_seconds":
                    round(time.perf_counter() - t0, 2)}
    floor = res["floor"]
    res["ratio_vs_plain_write"] = round((t1 - t0) / max(floor["write_seconds"], 1e-4), 3)
    res["ratio_vs_plain_write_fsync"] = round(res["train"]["stage_plus_sync_seconds"] /
                                              max(floor["write_fsync_seconds"], 1e-4), 3)
    res["movie"] = {"frames": summary["frames"], "bytes": res["train"]["movie_bytes"],
                    "complete": len(movie.Movie(cfg.movie_dir)) == cfg.steps + 1}
    return res


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every variant (ABC CBA ...)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--graph", default="auto", choices=config.GRAPH, help="Duckling's step: the config's graph")
    ap.add_argument("--compile", action="store_true", help="also measure Duckling with torch.compile")
    ap.add_argument("--full-run", metavar="PROFILE", help="instead: a whole run end to end, then its analysis")
    ap.add_argument("--disk-run", metavar="PROFILE", help="instead: the training against a plain write of its movie")
    ap.add_argument("--budget", type=float, default=0, help="with --disk-run: seconds it may take; a smaller "
                    "profile is run when a probe of the disk says the asked one would not fit")
    ap.add_argument("--no-analyze", action="store_true", help="with --full-run 10pct: skip the analysis")
    ap.add_argument("--tiny", action="store_true", help="the smoke model's sizes (a dry run of this script)")
    ap.add_argument("--reference", type=Path, default=REFERENCE, help="the reference loop")
    ap.add_argument("--gpt2", default=os.environ.get("DUCKLING_GPT2_DIR"), help="GPT-2 vocab.json + merges.txt")
    ap.add_argument("--scratch", default=None, help="folder for the runs (default: the system's temp folder)")
    ap.add_argument("--results", type=Path, default=common.RESULTS, help="folder for the JSON")
    ap.add_argument("--name", default=None, help="result name (default train[-DEVICE][-PROFILE])")
    a = ap.parse_args()
    common.RESULTS = a.results
    res = {"benchmark": "train", "device": a.device, "graph": a.graph, "machine": {**machine_info(), **gpu_info()}}
    whole = a.full_run or a.disk_run
    name = a.name or "-".join(["train"] + ([a.device.split(":")[0]] if a.device != "cpu" else []) +
                              ([whole] if whole else []))
    if whole:
        with tempfile.TemporaryDirectory(dir=a.scratch) as root:
            res.update(end_to_end(a, root) if a.full_run else against_the_disk(a, root))
        write_result(name, res)
        print(f"train bench ({a.device}, {whole}): {json.dumps(res['train'])}")
        return
    res.update({"steps": a.steps, "warmup": a.warmup, "rounds": a.rounds, **interleaved(a)})
    write_result(name, res)
    ratio, over = res["ratio_vs_reference"], res["recording_overhead_pct"]
    print(f"train bench ({a.device}, {a.rounds} interleaved rounds): duckling+recording / reference = "
          f"{ratio['median']} (range {ratio['min']}-{ratio['max']}), recording overhead {over['median']}% "
          f"(range {over['min']}-{over['max']}%), forces overhead {res['forces_overhead_pct']['median']}%"
          + (f", graph {res['graph_speedup']['median']}x eager" if "graph_speedup" in res else "")
          + f"; same movie every round: {res['same_movie_every_round']}")


if __name__ == "__main__":
    main()
