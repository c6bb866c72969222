#!/usr/bin/env python3
"""Corpus stage throughput against its floor: `encode_batch` called directly on the same stories.

The stage reads a TinyStories .txt (../shared/data's sample, repeated to a few MB), splits stories,
encodes them in batches, joins, counts ids and writes safetensors atomically; the floor only encodes
the already-split texts. Both are measured in this run; the goal is overhead under 20%.
Writes bench/results/corpus.json.

    python bench/bench_corpus.py [--repeat 4 --rounds 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_result

from duckling import config
from duckling.data import corpus, tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=4, help="copies of the sample in the benchmark file")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds of each; the best is kept")
    a = ap.parse_args()
    sample = SHARED / "tinystories" / "train-sample.txt"
    if not sample.exists():
        sys.exit(f"bench_corpus: needs {sample}")
    with tempfile.TemporaryDirectory() as root:
        src = Path(root) / "stories.txt"
        src.write_text(sample.read_text() * a.repeat)
        texts = list(corpus._txt_stories(src))
        cfg = config.build("demo", root=root, overrides={"tokenizer_path": str(SHARED / "gpt2"),
                                                          "corpus_source": str(src), "val_tokens": 1})
        tokenizer.build(cfg)
        tok = tokenizer.load(cfg)
        n_tokens = sum(len(e.ids) + 1 for e in tok.encode_batch(texts))
        # a budget that needs every token of the file but the first (validation) story
        cfg.max_steps = (n_tokens - 400) // cfg.tokens_per_step
        floor, stage = [], []
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            encs = tok.encode_batch(texts)
            floor.append(time.perf_counter() - t0)
            assert len(encs) == len(texts)
            t0 = time.perf_counter()
            meta = corpus.build(cfg, force=True, progress=False)
            stage.append(time.perf_counter() - t0)
        f, s = min(floor), min(stage)
        stage_tokens = meta["train_tokens"] + meta["val_tokens"]
        res = {"benchmark": "corpus", "machine": machine_info(), "stories": len(texts),
               "bytes": src.stat().st_size, "tokens_encoded_by_floor": n_tokens,
               "tokens_written_by_stage": stage_tokens,
               "floor_encode_batch": {"seconds": round(f, 4), "tokens_per_s": round(n_tokens / f)},
               "stage": {"seconds": round(s, 4), "tokens_per_s": round(stage_tokens / s)}}
        res["stage_overhead_pct"] = round(100 * (res["floor_encode_batch"]["tokens_per_s"]
                                                 / res["stage"]["tokens_per_s"] - 1), 2)
        write_result("corpus", res)
        print(f"corpus bench: encode_batch {res['floor_encode_batch']['tokens_per_s']:,} tok/s, stage "
              f"{res['stage']['tokens_per_s']:,} tok/s, overhead {res['stage_overhead_pct']}%")


if __name__ == "__main__":
    main()
