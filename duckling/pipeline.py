"""The study's stages in order, each callable from Python: tokenizer, corpus, train, analyze, report.

`run_stage` is the one way a stage runs: it takes the run's lock, settles the run's config (saves
it for a new run; refuses a changed one unless forced), runs the stage and notes its wall time.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from duckling import config
from duckling.analyze.stage import analyze
from duckling.book.render import render
from duckling.config import Config
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError
from duckling.io import read_json, run_lock, write_json
from duckling.train.loop import TRAIN_FILES
from duckling.train.loop import run as train

ENTRY = {"tokenizer": tokenizer.build, "corpus": corpus.build, "train": train, "analyze": analyze, "report": render}
STAGES = tuple(ENTRY)  # in the order they run


def outputs(stage: str, cfg: Config) -> list[Path]:
    """What a stage writes for this run alone (the tokenizer's folder is shared by runs)."""
    return {"tokenizer": [], "corpus": [cfg.corpus_dir],
            "train": [cfg.run_dir / n for n in TRAIN_FILES] + [cfg.movie_dir],
            "analyze": [cfg.record_dir], "report": [cfg.report_dir]}[stage]


def done_marker(stage: str, cfg: Config) -> Path:
    """The file a stage rewrites when, and only when, it does its work."""
    return {"tokenizer": cfg.tokenizer_dir / "meta.json", "corpus": cfg.corpus_dir / "meta.json",
            "train": cfg.run_dir / "train.json", "analyze": cfg.record_dir / "record.json",
            "report": cfg.report_dir / "index.html"}[stage]


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns
    except FileNotFoundError:
        return None


def settle(stage: str, cfg: Config, force: bool) -> None:
    """Save a new run's config; keep an existing run's unless the caller forces a change, which
    deletes what this stage and the later ones made from the old settings (and says so)."""
    path = cfg.run_dir / "config.json"
    if not path.exists():
        cfg.save()
        return
    saved = config.load(cfg.run, cfg.root)
    diff = config.differences(saved, cfg)
    if diff and not force:
        raise DucklingError(f"{path}: run {cfg.run} was made with other settings ({'; '.join(diff)}); "
                            f"use a new --run NAME, or add --force to replace them, which deletes this "
                            f"run's {stage} outputs and those of the stages after it")
    if diff:
        gone = [p for s in STAGES[STAGES.index(stage):] for p in outputs(s, cfg) if p.exists()]
        for p in gone:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        print(f"{stage}: --force replaces run {cfg.run}'s settings ({'; '.join(diff)}); deleted "
              f"{', '.join(str(p) for p in gone) or 'nothing'}")
    if saved.to_dict() != cfg.to_dict():
        cfg.save()


def run_stage(stage: str, cfg: Config, force: bool = False, **kwargs):
    """Run one stage under the run's lock; note its wall time in runs/<run>/timings.json (for the
    run card) only when it did its work, so a skip never hides what the work cost."""
    with run_lock(cfg.run_dir):
        new = not (cfg.run_dir / "config.json").exists()
        settle(stage, cfg, force)
        before = _stamp(done_marker(stage, cfg))
        t0 = time.perf_counter()
        try:
            out = ENTRY[stage](cfg, force=force, **kwargs)
        except BaseException:
            if new:  # a run whose first stage failed is no run: its next try may choose other settings
                (cfg.run_dir / "config.json").unlink(missing_ok=True)
            raise
        if _stamp(done_marker(stage, cfg)) != before:
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
