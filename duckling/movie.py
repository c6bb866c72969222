"""The movie: W (rows x d, bf16) after every recorded step, as plain safetensors shards.

    movies/<run>/W_movie_0000000.safetensors   frames step_0000000 .. step_0000127
    movies/<run>/W_movie_0000128.safetensors   ...
    movies/<run>/manifest.json                 shards, steps, checksums, rows, d, run metadata

Each shard is a stock safetensors file: one BF16 tensor (rows, d) per frame, named by its step;
its `__metadata__` (strings only, as the format demands) holds the steps, one checksum per frame,
the hash's name and the format version. Untied models record a second movie, "Wout", beside it.

Shards are streamed, not buffered: the writer reserves a header big enough for a full shard
(padded with spaces, which JSON and safetensors allow), appends frames as they arrive, then
writes the real header into the reserved space and renames the file. A full 36 GB movie thus
costs `queue_frames` frames of memory to record, and the header is padded to whole 4 KiB pages so
every frame starts page-aligned (10,000 x 128 x 2 bytes = 625 pages).

Checksums are CRC-32 (zlib's polynomial), computed by ISA-L (python-isal, carry-less multiply:
several times faster than zlib.crc32 or any cryptographic hash, with the same values as
zlib.crc32, which is the fallback without isal; bench/bench_movie.py measures them), and
adequate for what it guards against, a disk or copy that corrupts bytes, not an adversary. The
name is stored, so a reader follows whatever a shard says.
"""
from __future__ import annotations

import collections
import errno
import hashlib
import json
import mmap
import os
import queue
import re
import shutil
import struct
import threading
from collections.abc import Iterable, Iterator
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
HASH = "crc32"
HASHES = {
    "crc32": lambda b: f"{crc32(b):08x}",
    "sha256": lambda b: hashlib.sha256(b).hexdigest(),
    "blake2b": lambda b: hashlib.blake2b(b).hexdigest(),
}
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


def _header(rows, d, steps, checksums, name, hash_name, fingerprint: str = "") -> dict:
    fb = rows * d * 2
    head = {"__metadata__": {
        "format": FORMAT, "version": str(VERSION), "name": name, "dtype": DTYPE,
        "rows": str(rows), "d": str(d), "hash": hash_name, "fingerprint": fingerprint,
        "steps": json.dumps(list(steps), separators=(",", ":")),
        "checksums": json.dumps(list(checksums), separators=(",", ":")),
    }}
    for i, s in enumerate(steps):
        head[frame_key(s)] = {"dtype": DTYPE, "shape": [rows, d], "data_offsets": [i * fb, (i + 1) * fb]}
    return head


def _encode(head: dict) -> bytes:
    return json.dumps(head, separators=(",", ":")).encode()


def header_reserve(rows: int, d: int, capacity: int, name: str = "W", hash_name: str = HASH,
                   fingerprint: str = "") -> int:
    """JSON bytes reserved for a shard of `capacity` frames: the widest header it could need, so
    that 8 + reserve is a whole number of pages."""
    widest = HASHES[hash_name](b"")
    steps = range(_MAX_STEP - capacity + 1, _MAX_STEP + 1)
    big = _header(rows, d, steps, [widest] * capacity, name, hash_name, fingerprint)
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
        if meta["hash"] not in HASHES:
            raise ValueError(f"unknown hash {meta['hash']!r}")
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise DucklingError(f"{path}: not a readable movie shard ({e}); "
                            f"delete it or truncate the movie") from None
    return Shard(path, steps, sums, rows, d, 8 + n, meta["hash"], meta.get("fingerprint", ""))


class _ShardFile:
    """A shard being written: frames streamed after a reserved header, renamed when finished."""

    def __init__(self, movie_dir: Path, name: str, first_step: int, rows: int, d: int, capacity: int,
                 hash_name: str = HASH, fingerprint: str = ""):
        self.final = movie_dir / shard_name(name, first_step)
        self.tmp = movie_dir / f".{self.final.name}.tmp-{os.getpid()}"
        self.name, self.rows, self.d, self.hash, self.fingerprint = name, rows, d, hash_name, fingerprint
        self.reserve = header_reserve(rows, d, capacity, name, hash_name, fingerprint)
        self.steps: list[int] = []
        self.sums: list[str] = []
        self.f = open(self.tmp, "wb")
        self.f.seek(8 + self.reserve)

    def append(self, step: int, data) -> None:
        self.sums.append(HASHES[self.hash](data))
        self.f.write(data)
        self.steps.append(step)

    def finish(self) -> Shard:
        head = _encode(_header(self.rows, self.d, self.steps, self.sums, self.name, self.hash, self.fingerprint))
        if len(head) > self.reserve:
            raise RuntimeError(f"{self.tmp}: {len(head)} header bytes overflow the {self.reserve} reserved")
        self.f.seek(0)
        self.f.write(struct.pack("<Q", self.reserve) + head + b" " * (self.reserve - len(head)))
        self.f.close()
        os.replace(self.tmp, self.final)
        return Shard(self.final, self.steps, self.sums, self.rows, self.d, 8 + self.reserve, self.hash,
                     self.fingerprint)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


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


def truncate(movie_dir, after_step: int, name: str | None = None) -> list[Path]:
    """Drop every frame after `after_step` (all movies in the folder unless `name`), so a training
    resumed from that step's checkpoint records them again. Shards wholly after it are deleted; one
    that straddles it (not made by a trainer that flushes at checkpoints) is rewritten shorter.
    Stale temp files of dead writers go too. Returns the deleted or rewritten shard paths."""
    movie_dir = Path(movie_dir)
    if not movie_dir.is_dir():
        return []
    touched = []
    for n in [name] if name else movie_names(movie_dir) or []:
        _remove_temps(movie_dir, n)
        kept = []
        for p in _shard_paths(movie_dir, n):
            s = read_shard(p)
            if s.steps[0] > after_step:
                p.unlink()
                touched.append(p)
            elif s.steps[-1] > after_step:
                keep = [i for i, st in enumerate(s.steps) if st <= after_step]
                mm = np.memmap(p, dtype=np.uint8, mode="r", offset=s.data_start,
                               shape=(len(s.steps), s.frame_bytes))
                out = _ShardFile(movie_dir, n, s.steps[0], s.rows, s.d, len(keep), s.hash, s.fingerprint)
                try:
                    for i in keep:
                        out.append(s.steps[i], mm[i])
                    del mm
                    kept.append(out.finish())
                except BaseException:
                    out.abort()
                    raise
                touched.append(p)
            else:
                kept.append(s)
        if (movie_dir / MANIFEST).exists() or kept:
            rows, d = (kept[0].rows, kept[0].d) if kept else _manifest_shape(movie_dir, n)
            if rows:
                _write_manifest(movie_dir, n, kept, rows, d, None)
    if name is None:
        _remove_temps(movie_dir)
    return touched


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


def check_complete(movie_dir, name: str, fingerprint: str, steps, fix: str) -> None:
    """Raise (naming the shard) unless the movie is exactly one training's: manifest.json lists the
    shards on disk, every shard carries that training's fingerprint, and the steps are `steps`."""
    movie_dir = Path(movie_dir)
    mv = Movie(movie_dir, name)
    if not mv.manifest:
        raise DucklingError(f"{movie_dir / MANIFEST}: missing or without a {name} section; {fix}")
    listed = {e["file"]: e for e in mv.manifest.get("shards", [])}
    on_disk = {s.path.name: s for s in mv.shards}
    for f in listed.keys() - on_disk.keys():
        raise DucklingError(f"{movie_dir / f}: missing (listed in {MANIFEST}); {fix}")
    for f, s in on_disk.items():
        if f not in listed or (listed[f]["steps"], listed[f]["checksums"]) != (s.steps, s.checksums):
            raise DucklingError(f"{s.path}: not the shard {MANIFEST} lists (copied from another run?); {fix}")
        if s.fingerprint != fingerprint:
            raise DucklingError(f"{s.path}: recorded by another training (fingerprint {s.fingerprint or 'none'}, "
                                f"this run's {fingerprint}); {fix}")
    want = np.asarray(steps, dtype=np.int64)
    if not np.array_equal(mv.steps, want):
        missing = np.setdiff1d(want, mv.steps)
        what = (f"has no frame of step {int(missing[0])} ({missing.size} of {want.size} missing)" if missing.size
                else f"holds frames this training did not record (step {int(np.setdiff1d(mv.steps, want)[0])})")
        raise DucklingError(f"{movie_dir}: the {name} movie {what}; {fix}")


# ---- writer ----------------------------------------------------------------------------------
class MovieWriter:
    """Record frames without stalling training.

    `write` converts to bf16 and copies into one of `queue_frames` preallocated host buffers
    (pinned, non_blocking and fenced by a CUDA event when the weight is on a GPU), then returns;
    a background thread checksums and appends to the current shard. When the thread falls behind,
    `write` waits for a free buffer: frames are never dropped. A failure in the thread is raised
    by the next write/flush/close.
    """

    def __init__(self, movie_dir, rows: int, d: int, shard_frames: int = 128, name: str = "W",
                 meta: dict | None = None, queue_frames: int = 8, hash_name: str = HASH):
        if shard_frames < 1 or queue_frames < 1:
            raise DucklingError(f"shard_frames={shard_frames}, queue_frames={queue_frames}: "
                                f"must be 1 or more")
        if hash_name not in HASHES:
            raise DucklingError(f"hash {hash_name!r}: choose one of {', '.join(HASHES)}")
        self.dir = Path(movie_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows, self.d, self.shard_frames, self.name = rows, d, shard_frames, name
        self.meta, self.queue_frames, self.hash = dict(meta or {}), queue_frames, hash_name
        _remove_temps(self.dir, name)  # any temp file now belongs to a dead writer
        self.shards = [read_shard(p) for p in _shard_paths(self.dir, name)]
        for s in self.shards:
            if (s.rows, s.d) != (rows, d):
                raise DucklingError(f"{s.path}: frames are {s.rows} x {s.d}, this run records {rows} x {d}; "
                                    f"use another movie folder or delete this one")
        self.last_step = self.shards[-1].steps[-1] if self.shards else -1
        self._write_manifest(fresh=not self.shards)
        self._bufs = None  # torch tensors, allocated on the first write (pinned if it comes from CUDA)
        self._free: queue.Queue = queue.Queue()
        self._work: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._cur: _ShardFile | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"movie-{name}", daemon=True)
        self._thread.start()

    # -- caller side --
    def write(self, step: int, w) -> None:
        """Queue W at `step`: a torch tensor (fp32/bf16, any device), a float32 array or uint16 bf16 bits."""
        import torch

        self._check()
        if self._closed:
            raise DucklingError(f"{self.dir}: {self.name} movie writer is closed")
        step = int(step)
        if step <= self.last_step:
            raise DucklingError(f"{self.dir}: step {step} written after step {self.last_step}; "
                                f"steps must increase (truncate the movie to resume)")
        if tuple(w.shape) != (self.rows, self.d):
            raise DucklingError(f"{self.dir}: frame at step {step} has shape {tuple(w.shape)}, "
                                f"expected ({self.rows}, {self.d})")
        if isinstance(w, np.ndarray):
            if w.dtype == np.uint16:
                w = torch.from_numpy(np.ascontiguousarray(w).view(np.int16))
            else:
                w = torch.from_numpy(np.asarray(w, dtype=np.float32))
        w = w.detach()
        if w.dtype == torch.uint16:
            w = w.view(torch.int16)
        if self._bufs is None:
            pin = w.is_cuda
            self._bufs = [torch.empty((self.rows, self.d), dtype=torch.bfloat16, pin_memory=pin)
                          for _ in range(self.queue_frames)]
            self._views = [b.view(torch.int16).numpy() for b in self._bufs]
            for i in range(self.queue_frames):
                self._free.put(i)
        i = self._free.get()  # blocks while the thread is behind
        if self._error is not None:
            self._free.put(i)
            self._check()
        buf = self._bufs[i]
        event = None
        if w.dtype == torch.int16:
            buf.view(torch.int16).copy_(w)
        elif w.is_cuda:
            buf.copy_(w.to(torch.bfloat16), non_blocking=True)  # rounds on the GPU, copies async
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(w.device))
        else:  # .to() rounds to nearest even, and faster than a converting copy_
            buf.copy_(w.to(torch.bfloat16))
        self.last_step = step
        self._work.put(("frame", step, i, event))

    def flush(self) -> None:
        """End the current shard here (a short one if need be) and wait until all is on disk."""
        self._check()
        if self._closed:
            return
        self._work.put(("flush",))
        self._work.join()
        self._check()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._work.put(("flush",))
        self._work.put(None)
        self._thread.join()
        self._bufs = self._views = None
        self._check()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:  # do not hide the caller's exception behind ours
            try:
                self.close()
            except BaseException:  # noqa: BLE001, S110 - the caller's exception is the one to see
                pass

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    # -- thread side --
    def _loop(self) -> None:
        while True:
            item = self._work.get()
            try:
                if item is None:
                    return
                if item[0] == "frame":
                    _, step, i, event = item
                    try:
                        if self._error is None:
                            if event is not None:
                                event.synchronize()
                            self._append(step, self._views[i])
                    finally:
                        self._free.put(i)
                elif self._error is None:
                    self._finish()
            except BaseException as e:
                self._error = e
                if self._cur is not None:
                    self._cur.abort()
                    self._cur = None
            finally:
                self._work.task_done()

    def _append(self, step: int, data: np.ndarray) -> None:
        if self._cur is None:
            self._cur = _ShardFile(self.dir, self.name, step, self.rows, self.d, self.shard_frames, self.hash,
                                   str(self.meta.get("fingerprint", "")))
        self._cur.append(step, data)
        if len(self._cur.steps) == self.shard_frames:
            self._finish()

    def _finish(self) -> None:
        if self._cur is None:
            return
        cur, self._cur = self._cur, None
        self.shards.append(cur.finish())
        self._write_manifest()

    def _write_manifest(self, fresh: bool = False) -> None:
        _write_manifest(self.dir, self.name, self.shards, self.rows, self.d, self.meta, self.shard_frames,
                        fresh)


def write_movie(movie_dir, frames: Iterable, shard_frames: int = 128, name: str = "W",
                meta: dict | None = None, queue_frames: int = 8) -> Movie:
    """Build a movie from (step, array) pairs: float32 weights or uint16 bf16 bits (tests, benchmarks)."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise DucklingError(f"{movie_dir}: no frames to write")
    rows, d = first[1].shape
    with MovieWriter(movie_dir, rows, d, shard_frames, name, meta, queue_frames) as w:
        w.write(*first)
        for step, x in it:
            w.write(step, x)
    return Movie(movie_dir, name)


# ---- reader ----------------------------------------------------------------------------------
DIRECT_ALIGN = PAGE  # O_DIRECT offsets, lengths and buffers on these boundaries work on every block size
_O_DIRECT = getattr(os, "O_DIRECT", 0)


def aligned_frames(n: int, rows: int, d: int) -> tuple[mmap.mmap, int]:
    """(buffer, stride): room for n frames, each starting on a DIRECT_ALIGN boundary of an anonymous
    page-aligned mapping, so FrameReader can read into them with O_DIRECT."""
    stride = frame_stride(rows, d)
    return mmap.mmap(-1, max(1, n) * stride), stride


def frame_stride(rows: int, d: int) -> int:
    """Bytes between frames held in memory for O_DIRECT reads: a frame rounded up to DIRECT_ALIGN."""
    return -(-rows * d * 2 // DIRECT_ALIGN) * DIRECT_ALIGN


class FrameReader:
    """Whole frames read into the caller's arrays, for one pass over a movie.

    Each shard is opened once and read front to back with plain preadv calls. direct: with
    O_DIRECT where the system allows it (Linux, a file system that supports it, frames and the
    caller's array on DIRECT_ALIGN boundaries, as the writer and aligned_frames lay them out): the
    disk then copies straight into the array, with no page-cache copy, and a 36 GB movie streams
    through without evicting everything else from memory (reading through the page cache of a
    machine whose memory is full of movie costs far more system time than the direct read).
    Otherwise, or if the file system
    refuses, the same reads go through the page cache, advised as sequential."""

    def __init__(self, mv: Movie, direct: bool = True):
        self.mv, self.direct = mv, bool(direct and _O_DIRECT)
        self._k, self._fd, self._fd_direct = -1, -1, False

    def _open(self, k: int, want_direct: bool) -> None:
        self.close()
        s = self.mv.shards[k]
        self._fd_direct = False
        if want_direct and s.data_start % DIRECT_ALIGN == 0 and s.frame_bytes % DIRECT_ALIGN == 0:
            try:
                self._fd = os.open(s.path, os.O_RDONLY | _O_DIRECT)
                self._fd_direct = True
            except OSError:  # e.g. tmpfs: read through the page cache instead
                pass
        if not self._fd_direct:
            self._fd = os.open(s.path, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        self._k = k

    def read(self, i: int, out: np.ndarray) -> int:
        """Frame i (its index in the movie) into out, a writable C-contiguous uint16 (rows, d)
        array; returns the frame's step."""
        mv = self.mv
        if out.dtype != np.uint16 or out.shape != (mv.rows, mv.d) or not out.flags.c_contiguous:
            raise DucklingError(f"FrameReader.read: need a C-contiguous uint16 ({mv.rows}, {mv.d}) array")
        k, j = int(mv._shard_of[i]), int(mv._local[i])
        s = mv.shards[k]
        aligned = out.ctypes.data % DIRECT_ALIGN == 0
        if k != self._k or (self._fd_direct and not aligned):
            self._open(k, self.direct and aligned)
        view = memoryview(out).cast("B")
        offset, got = s.data_start + j * s.frame_bytes, 0
        while got < len(view):
            try:
                n = os.preadv(self._fd, [view[got:]], offset + got)
            except OSError as e:
                if e.errno == errno.EINVAL and self._fd_direct:  # the file system refuses O_DIRECT here
                    self._open(k, False)
                    continue
                raise DucklingError(f"{s.path}: read failed at byte {offset + got} ({e.strerror})") from None
            if n == 0:
                raise DucklingError(f"{s.path}: ends inside frame {frame_key(s.steps[j])}; the file is truncated")
            got += n
        return s.steps[j]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._k = -1, -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Movie:
    """Random and sequential access to the frames, as uint16 bf16 bit patterns.

    Frames are np.memmap views of the shard files: reading one touches only its own 2.56 MB, the
    page cache does the buffering, and nothing holds a movie in Python memory. A handful of shards
    stays mapped (LRU) so random access does not reopen files.
    """

    def __init__(self, movie_dir, name: str = "W", max_open: int = 4):
        self.dir = Path(movie_dir)
        self.name = name
        paths = _shard_paths(self.dir, name)
        if not paths:
            what = "no movie" if name == "W" else f"no {name} movie"
            raise DucklingError(f"{self.dir}: {what}; run `invoke train` first")
        self.shards = [read_shard(p) for p in paths]
        s0 = self.shards[0]
        self.rows, self.d = s0.rows, s0.d
        for s in self.shards:
            if (s.rows, s.d) != (self.rows, self.d):
                raise DucklingError(f"{s.path}: frames are {s.rows} x {s.d}, the movie's first shard "
                                    f"{self.rows} x {self.d}")
        self.steps = np.array([st for s in self.shards for st in s.steps], dtype=np.int64)
        if len(self.steps) > 1 and not np.all(np.diff(self.steps) > 0):
            raise DucklingError(f"{self.dir}: {name} shards overlap in steps; "
                                f"truncate the movie and re-record")
        self._shard_of = np.repeat(np.arange(len(self.shards)), [len(s.steps) for s in self.shards])
        self._local = np.concatenate([np.arange(len(s.steps)) for s in self.shards])
        self._maps: collections.OrderedDict[int, np.memmap] = collections.OrderedDict()
        self._max_open = max_open
        self.manifest = self._read_manifest()
        self.meta = self.manifest.get("meta", {})

    def __getstate__(self) -> dict:  # pickled (for a worker process) without its open mappings
        return {**self.__dict__, "_maps": collections.OrderedDict()}

    def _read_manifest(self) -> dict:
        path = self.dir / MANIFEST
        if not path.exists():
            return {}
        try:
            return read_json(path).get("movies", {}).get(self.name, {})
        except (OSError, json.JSONDecodeError) as e:
            raise DucklingError(f"{path}: unreadable ({e}); truncate the movie to rebuild it") from None

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.d * 2

    @property
    def nbytes(self) -> int:
        """Bytes of frame data (what reading the whole movie reads)."""
        return len(self) * self.frame_bytes

    def __repr__(self) -> str:
        lo, hi = (int(self.steps[0]), int(self.steps[-1]))
        return (f"Movie({str(self.dir)!r}, {self.name}: {len(self)} frames, steps {lo}..{hi}, "
                f"{self.rows}x{self.d})")

    def _map(self, k: int) -> np.memmap:
        mm = self._maps.get(k)
        if mm is None:
            s = self.shards[k]
            mm = np.memmap(s.path, dtype=np.uint16, mode="r", offset=s.data_start,
                           shape=(len(s.steps), self.rows, self.d))
            self._maps[k] = mm
            if len(self._maps) > self._max_open:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(k)
        return mm

    def index(self, step: int) -> int:
        i = int(np.searchsorted(self.steps, step))
        if i == len(self.steps) or self.steps[i] != step:
            raise DucklingError(f"{self.dir}: no {self.name} frame at step {step} "
                                f"(steps {self.steps[0]}..{self.steps[-1]}, {len(self)} frames)")
        return i

    def _get(self, i: int, verify: bool) -> np.ndarray:
        k, j = int(self._shard_of[i]), int(self._local[i])
        bits = np.asarray(self._map(k)[j])
        if verify:
            self._check(self.shards[k], j, bits)
        return bits

    @staticmethod
    def _check(s: Shard, j: int, bits: np.ndarray) -> None:
        got = HASHES[s.hash](bits)
        if got != s.checksums[j]:
            raise DucklingError(f"{s.path}: frame {frame_key(s.steps[j])} fails its {s.hash} checksum "
                                f"(stored {s.checksums[j]}, read {got}); the file is corrupt")

    def frame(self, step: int, verify: bool = False) -> np.ndarray:
        """W at `step` as read-only uint16 bits, shape (rows, d); reads only that frame."""
        return self._get(self.index(step), verify)

    def checksum(self, step: int) -> str:
        i = self.index(step)
        return self.shards[int(self._shard_of[i])].checksums[int(self._local[i])]

    def frames(self, start: int | None = None, stop: int | None = None,
               verify: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """(step, bits) for start <= step < stop, in order, each frame read once."""
        lo = 0 if start is None else int(np.searchsorted(self.steps, start, "left"))
        hi = len(self) if stop is None else int(np.searchsorted(self.steps, stop, "left"))
        for i in range(lo, hi):
            yield int(self.steps[i]), self._get(i, verify)

    def __iter__(self):
        return self.frames()

    def stream(self, verify: bool = False, direct: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """(step, bits) for every frame in order, for one pass over the whole movie, read by a
        FrameReader (O_DIRECT where possible) into one reused buffer: `bits` is valid only until
        the next frame is yielded (copy what you keep)."""
        buf, _ = aligned_frames(1, self.rows, self.d)
        bits = np.frombuffer(buf, np.uint16, count=self.rows * self.d).reshape(self.rows, self.d)
        with FrameReader(self, direct) as reader:
            for i in range(len(self)):
                step = reader.read(i, bits)
                if verify:
                    self.check(i, bits)
                yield step, bits

    def check(self, i: int, bits: np.ndarray) -> None:
        """Raise if frame i's bits do not match the checksum stored for it."""
        k, j = int(self._shard_of[i]), int(self._local[i])
        self._check(self.shards[k], j, bits)

    def verify(self, progress: bool = True) -> int:
        """Check every frame's checksum, that steps are evenly spaced multiples of the recording
        interval, and that manifest.json agrees with the shards. Returns the number of frames."""
        from tqdm import tqdm

        n = 0
        for _ in tqdm(self.stream(verify=True), total=len(self), unit="frame", disable=not progress,
                      desc=f"verify {self.name}"):
            n += 1
        every = int(self.meta.get("record_every") or (self.steps[1] - self.steps[0] if len(self) > 1 else 1))
        expect = self.steps[0] + every * np.arange(len(self))
        off = np.flatnonzero(self.steps != expect)
        if every < 1 or self.steps[0] % every or off.size:
            gap = int(off[0]) if off.size else 0
            raise DucklingError(f"{self.dir}: {self.name} steps are not consecutive multiples of {every} "
                                f"(first off at frame {gap}, step {int(self.steps[gap])}); "
                                f"truncate and re-record")
        if self.manifest:
            listed = [(e["file"], e["steps"], e["checksums"]) for e in self.manifest.get("shards", [])]
            actual = [(s.path.name, s.steps, s.checksums) for s in self.shards]
            if listed != actual:
                raise DucklingError(f"{self.dir / MANIFEST}: disagrees with the {self.name} shards on disk; "
                                    f"truncate the movie to the last checkpoint to rebuild it")
        return n
