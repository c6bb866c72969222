"""The movie format: file names, shard headers, the manifest, checks of a movie on disk."""
from __future__ import annotations

import json
import re
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duckling.errors import DucklingError
from duckling.io import read_json, write_json

try:  # ISA-L's CRC-32 releases the GIL and is faster than zlib's; the values are identical
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib gives the same checksums
    from zlib import crc32

FORMAT = "duckling-movie"
VERSION = 1
DTYPE = "BF16"
HASH = "crc32"  # the one checksum a shard may name
MANIFEST = "manifest.json"
PAGE = 4096
_MAX_STEP = 10**19 - 1  # widest step a header must make room for
_manifest_lock = threading.Lock()  # W and Wout writers of one run share manifest.json


# ---- bf16 bit patterns -----------------------------------------------------------------------
def bf16_bits_to_float32(bits) -> np.ndarray:
    """Exact: a bf16 is the top half of a float32."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(x) -> np.ndarray:
    """Round to nearest even, as `torch.Tensor.to(torch.bfloat16)`; every NaN becomes 0x7FC0."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    out = ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)
    out[np.isnan(u.view(np.float32))] = 0x7FC0
    return out


# ---- file names and headers ------------------------------------------------------------------
def shard_name(name: str, first_step: int) -> str:
    return f"{name}_movie_{first_step:07d}.safetensors"


def frame_key(step: int) -> str:
    return f"step_{step:07d}"


def _shard_re(name: str):
    return re.compile(rf"^{re.escape(name)}_movie_(\d{{7,}})\.safetensors$")


def _temp_glob(name: str) -> str:
    return f".{name}_movie_*.safetensors.tmp-*"


def _shard_paths(movie_dir: Path, name: str) -> list[Path]:
    """Finished shards only (temp files start with a dot), in step order."""
    if not movie_dir.is_dir():
        return []
    pat = _shard_re(name)
    found = [(int(m.group(1)), p) for p in movie_dir.iterdir() if (m := pat.match(p.name))]
    return [p for _, p in sorted(found)]


def movie_names(movie_dir) -> list[str]:
    """The movies recorded in a folder ("W", and "Wout" for an untied model)."""
    movie_dir = Path(movie_dir)
    if not movie_dir.is_dir():
        return []
    pat = re.compile(r"^(.+)_movie_\d{7,}\.safetensors$")
    return sorted({m.group(1) for p in movie_dir.iterdir() if (m := pat.match(p.name))})


def checksum(data) -> str:
    """A frame's checksum: CRC-32 (zlib's polynomial) as 8 hex digits."""
    return f"{crc32(data):08x}"


def _header(rows, d, steps, checksums, name, fingerprint: str = "") -> dict:
    fb = rows * d * 2
    head = {"__metadata__": {
        "format": FORMAT, "version": str(VERSION), "name": name, "dtype": DTYPE,
        "rows": str(rows), "d": str(d), "hash": HASH, "fingerprint": fingerprint,
        "steps": json.dumps(list(steps), separators=(",", ":")),
        "checksums": json.dumps(list(checksums), separators=(",", ":")),
    }}
    for i, s in enumerate(steps):
        head[frame_key(s)] = {"dtype": DTYPE, "shape": [rows, d], "data_offsets": [i * fb, (i + 1) * fb]}
    return head


def _encode(head: dict) -> bytes:
    return json.dumps(head, separators=(",", ":")).encode()


def header_reserve(rows: int, d: int, capacity: int, name: str = "W", fingerprint: str = "") -> int:
    """JSON bytes reserved for a shard of `capacity` frames: the widest header it could need, so
    that 8 + reserve is a whole number of pages."""
    widest = checksum(b"")
    steps = range(_MAX_STEP - capacity + 1, _MAX_STEP + 1)
    big = _header(rows, d, steps, [widest] * capacity, name, fingerprint)
    return -(-(8 + len(_encode(big))) // PAGE) * PAGE - 8


@dataclass
class Shard:
    """One finished shard file, as its header describes it."""
    path: Path
    steps: list[int]
    checksums: list[str]
    rows: int
    d: int
    data_start: int
    hash: str
    fingerprint: str = ""  # of the training that recorded it

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.d * 2

    def entry(self) -> dict:
        return {"file": self.path.name, "first_step": self.steps[0], "last_step": self.steps[-1],
                "n_frames": len(self.steps), "bytes": self.data_start + len(self.steps) * self.frame_bytes,
                "steps": self.steps, "checksums": self.checksums}


def read_shard(path) -> Shard:
    """Parse a shard's header (8-byte little-endian length + JSON) and check its layout."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 << 20:
                raise ValueError(f"header length {n}")
            head = json.loads(f.read(n))
        size = path.stat().st_size
        meta = head.pop("__metadata__")
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        if int(meta["version"]) > VERSION:
            raise ValueError(f"format version {meta['version']} is newer than this reader ({VERSION})")
        rows, d = int(meta["rows"]), int(meta["d"])
        steps, sums = json.loads(meta["steps"]), json.loads(meta["checksums"])
        fb = rows * d * 2
        if len(steps) != len(sums) or len(head) != len(steps) or steps != sorted(set(steps)):
            raise ValueError("steps, checksums and tensors disagree")
        for i, s in enumerate(steps):
            t = head[frame_key(s)]
            if t["dtype"] != DTYPE or t["shape"] != [rows, d] or t["data_offsets"] != [i * fb, (i + 1) * fb]:
                raise ValueError(f"tensor {frame_key(s)} is not a BF16 ({rows}, {d}) frame in step order")
        if size != 8 + n + len(steps) * fb:
            raise ValueError(f"{size} bytes, expected {8 + n + len(steps) * fb}")
        if meta["hash"] != HASH:
            raise ValueError(f"unknown hash {meta['hash']!r}")
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise DucklingError(f"{path}: not a readable movie shard ({e}); "
                            f"delete it or truncate the movie") from None
    return Shard(path, steps, sums, rows, d, 8 + n, meta["hash"], meta.get("fingerprint", ""))


# ---- manifest --------------------------------------------------------------------------------
def _write_manifest(movie_dir: Path, name: str, shards: list[Shard], rows: int, d: int,
                    meta: dict | None, shard_frames: int | None = None, fresh: bool = False) -> None:
    """Rewrite this movie's section of manifest.json (atomically), keeping the other sections.
    The run metadata is merged into the old, unless the movie starts `fresh` (no shards yet)."""
    with _manifest_lock:
        path = movie_dir / MANIFEST
        man = {}
        if path.exists():
            try:
                man = read_json(path)
            except (OSError, json.JSONDecodeError):
                man = {}
        movies = man.get("movies", {})
        old = movies.get(name, {})
        sec = {"rows": rows, "d": d, "dtype": DTYPE, "hash": shards[0].hash if shards else HASH,
               "frame_bytes": rows * d * 2,
               "shard_frames": shard_frames or old.get("shard_frames"),
               "n_frames": sum(len(s.steps) for s in shards),
               "meta": {**({} if fresh else old.get("meta", {})), **(meta or {})},
               "shards": [s.entry() for s in shards]}
        movies[name] = sec
        write_json(path, {"format": FORMAT, "version": VERSION, "movies": movies})


def _remove_temps(movie_dir: Path, name: str | None = None) -> list[Path]:
    names = [name] if name else ["*"]
    gone = []
    for n in names:
        for p in movie_dir.glob(_temp_glob(n)):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def _manifest_shape(movie_dir: Path, name: str) -> tuple[int, int]:
    try:
        sec = read_json(movie_dir / MANIFEST)["movies"][name]
        return sec["rows"], sec["d"]
    except (OSError, KeyError, json.JSONDecodeError):
        return 0, 0


# ---- disk budget -----------------------------------------------------------------------------
def estimate_bytes(rows: int, d: int, n_frames: int, shard_frames: int = 128) -> int:
    """Disk a movie of n_frames takes: the frames, one reserved header per shard, the manifest."""
    n_shards = -(-n_frames // max(1, shard_frames))
    headers = n_shards * (8 + header_reserve(rows, d, shard_frames))
    return n_frames * rows * d * 2 + headers + 64 * n_frames + 4096


def gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_disk(movie_dir, n_bytes: int) -> None:
    """Refuse to start a training whose movie cannot fit, rather than fail hours into it."""
    movie_dir = Path(movie_dir)
    probe = movie_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if n_bytes > free:
        raise DucklingError(f"{movie_dir}: needs {gb(n_bytes)}, only {gb(free)} free on that disk; "
                            f"free space or use --set record_every=N")


