#!/usr/bin/env python3
"""Training throughput: Duckling's step with W recorded every step, against the plain eager loop of
../shared/bench/reference_train.py (same model, same batch, no recording), measured in one run.

Also Duckling without recording and without the forces log, so each overhead stands on its own. Tokens are random live
ids, as in the reference, so only the cost of the step is measured. Writes bench/results/train[-DEVICE].json.

    python bench/bench_train.py [--steps 10 --warmup 3 --rounds 3 --device cpu]

Each variant runs once per round, rounds interleaved (ABC, CBA, ...); the ratios are taken within a
round and reported as their median and range, so a noisy machine shows as a wide range instead of
flipping the answer.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_result

from duckling import config
from duckling.data import corpus, tokenizer
from duckling.io import write_json
from duckling.train import loop

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "reference_train.py"


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


def duckling_tps(root: str, device: str, steps: int, warmup: int, record: bool, compile_: bool,
                 log_forces: bool = True) -> dict:
    n = steps + warmup
    cfg = config.build("demo", run=f"bench-{record}-{compile_}-{log_forces}", root=root, overrides={
        "max_steps": n, "device": device, "eval_every": 10**9, "checkpoint_every": 10**9, "compile": compile_,
        "prompts": [], "log_forces": log_forces})
    cfg.save()
    fake_corpus(cfg)
    marks = []  # the loop's clock after each step; the final eval, checkpoint and samples come after
    loop.run(cfg, force=True, progress=False, record=record, on_step=lambda _: marks.append(time.perf_counter()))
    dt = marks[-1] - marks[warmup - 1]
    timed = len(marks) - warmup
    return {"steps": timed, "seconds": round(dt, 4), "tokens_per_s": round(timed * cfg.tokens_per_step / dt, 1)}


def reference_tps(device: str, steps: int, warmup: int) -> dict:
    out = subprocess.run([sys.executable, str(REFERENCE), "--steps", str(steps), "--warmup", str(warmup),
                          "--device", device], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(xs: list[float]) -> dict:
    """Median and range of per-round values: the answer, and how far one round could move it."""
    xs = sorted(xs)
    return {"median": round(float(np.median(xs)), 3), "min": round(xs[0], 3), "max": round(xs[-1], 3),
            "rounds": [round(x, 3) for x in xs]}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every variant (ABC CBA ...)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="also measure Duckling with torch.compile")
    ap.add_argument("--full-run", action="store_true", help="also time a whole 10%% run with recording (GPU)")
    a = ap.parse_args()
    res = {"benchmark": "train", "device": a.device, "machine": machine_info(), "steps": a.steps,
           "warmup": a.warmup, "rounds": a.rounds}
    variants = {"reference": lambda root: reference_tps(a.device, a.steps, a.warmup),
                "duckling_recording": lambda root: duckling_tps(root, a.device, a.steps, a.warmup, True, False),
                "duckling_no_recording": lambda root: duckling_tps(root, a.device, a.steps, a.warmup, False, False),
                "duckling_no_forces": lambda root: duckling_tps(root, a.device, a.steps, a.warmup, True, False, False)}
    if a.compile:
        variants["duckling_recording_compiled"] = lambda root: duckling_tps(root, a.device, a.steps, a.warmup,
                                                                            True, True)
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as root:
        for r in range(a.rounds):  # interleaved, order reversed every other round: drift hits all alike
            for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                runs[name].append(variants[name](root))
        if a.full_run:
            cfg = config.build("10pct", run="full", root=root, overrides={"device": a.device, "eval_every": 10**9,
                                                                       "prompts": []})
            cfg.save()
            fake_corpus(cfg)
            marks = []
            loop.run(cfg, progress=True, on_step=lambda _: marks.append(time.perf_counter()))
            res["full_10pct_run"] = {"steps": len(marks), "seconds_with_recording": round(marks[-1] - marks[0], 2)}
    tps = {k: [x["tokens_per_s"] for x in v] for k, v in runs.items()}
    res.update({k: {"tokens_per_s": spread(v)} for k, v in tps.items()})
    # ratios within a round (same minute of the machine's life), then their median across rounds
    res["ratio_vs_reference"] = spread([d / r for d, r in zip(tps["duckling_recording"], tps["reference"])])
    res["recording_overhead_pct"] = spread([100 * (n / d - 1) for n, d in
                                            zip(tps["duckling_no_recording"], tps["duckling_recording"])])
    res["forces_overhead_pct"] = spread([100 * (n / d - 1) for n, d in
                                         zip(tps["duckling_no_forces"], tps["duckling_recording"])])
    write_result("train" if a.device == "cpu" else f"train-{a.device.split(':')[0]}", res)
    ratio, over = res["ratio_vs_reference"], res["recording_overhead_pct"]
    print(f"train bench ({a.device}, {a.rounds} interleaved rounds): duckling+recording / reference = "
          f"{ratio['median']} (range {ratio['min']}-{ratio['max']}), recording overhead {over['median']}% "
          f"(range {over['min']}-{over['max']}%), forces overhead {res['forces_overhead_pct']['median']}%")


if __name__ == "__main__":
    main()
