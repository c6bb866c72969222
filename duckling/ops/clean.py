"""Delete generated outputs: one run's, or everything under data/, movies/, runs/ and report/_output/."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from duckling import config
from duckling.config import Config
from duckling.errors import DucklingError

KEEP = {"README.md", ".gitkeep"}


def targets(run: str | None, root: str | None = None) -> list[Path]:
    root_dir = Path(root or config.default_root())
    if run:
        cfg = Config(run=run, root=str(root_dir))
        paths = [cfg.run_dir, cfg.corpus_dir, cfg.movie_dir, cfg.record_dir, cfg.report_dir]
    else:
        paths = [p for d in ("data", "movies", "runs", "report/_output") if (root_dir / d).is_dir()
                 for p in (root_dir / d).iterdir() if p.name not in KEEP]
    return [p for p in paths if p.exists()]


def clean(run: str | None = None, yes: bool = False, root: str | None = None) -> list[Path]:
    paths = targets(run, root)
    if not paths:
        print(f"clean: nothing to delete{f' for run {run}' if run else ''}")
        return []
    if not yes:
        if not sys.stdin.isatty():
            raise DucklingError(f"clean: would delete {len(paths)} paths; pass --yes to confirm")
        print("\n".join(f"  {p}" for p in paths))
        if input(f"delete these {len(paths)} paths? [y/N] ").strip().lower() != "y":
            print("clean: nothing deleted")
            return []
    for p in paths:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    print(f"clean: deleted {len(paths)} paths")
    return paths
