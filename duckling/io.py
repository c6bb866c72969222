"""Small file helpers: atomic writes, hashes, stage fingerprints.

Every output is written under a temporary name in its own folder and renamed when complete,
so a killed stage never leaves a file that looks finished.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike):
    """Hold an exclusive flock on runs/<run>/lock while a stage works on the run; the kernel drops
    it when the process dies, so a killed stage never leaves the run locked."""
    from duckling.errors import DucklingError

    path = Path(run_dir) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise DucklingError(f"{path}: another Duckling stage (pid {pid}) is working on run "
                                f"{Path(run_dir).name}; wait for it or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(obj) -> str:
    """A stable hash of a JSON-able description of a stage's inputs and settings."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str).encode())[:16]


def up_to_date(meta_path: str | os.PathLike, fp: str, *outputs: str | os.PathLike) -> bool:
    """True when a stage's outputs exist and were made from the same inputs and settings."""
    meta_path = Path(meta_path)
    if not meta_path.exists() or not all(Path(o).exists() for o in outputs):
        return False
    try:
        return read_json(meta_path).get("fingerprint") == fp
    except (json.JSONDecodeError, OSError):
        return False


def read_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A run's metrics.csv or evals.csv as float64 columns (step as int64); {} when it has no rows."""
    from duckling.errors import DucklingError

    path = Path(path)
    if not path.exists():
        raise DucklingError(f"{path}: no training metrics; run `invoke train` first")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    cols = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
    cols["step"] = cols["step"].astype(np.int64)
    return cols
