"""The study's stages in order, each callable from Python: tokenizer, corpus, train, analyze, report."""
from __future__ import annotations

import importlib
import time

from duckling.config import Config
from duckling.io import read_json, write_json

STAGES = ("tokenizer", "corpus", "train", "analyze", "report")
# stage -> (module, function)
_ENTRY = {"tokenizer": ("duckling.tokenizer", "build"), "corpus": ("duckling.corpus", "build"),
          "train": ("duckling.train", "run"), "analyze": ("duckling.record", "analyze"),
          "report": ("duckling.report", "render")}


def run_stage(stage: str, cfg: Config, force: bool = False, **kwargs):
    """Run one stage and note its wall time in runs/<run>/timings.json (for the run card)."""
    mod, fn = _ENTRY[stage]
    t0 = time.perf_counter()
    out = getattr(importlib.import_module(mod), fn)(cfg, force=force, **kwargs)
    path = cfg.run_dir / "timings.json"
    timings = read_json(path) if path.exists() else {}
    timings[stage] = round(time.perf_counter() - t0, 2)
    write_json(path, timings)
    return out


def run_all(cfg: Config, force: bool = False) -> None:
    t0 = time.perf_counter()
    for stage in STAGES:
        run_stage(stage, cfg, force=force)
    print(f"all: {cfg.run} done in {time.perf_counter() - t0:.1f}s; report at {cfg.report_dir / 'index.html'}")
