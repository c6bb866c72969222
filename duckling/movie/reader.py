"""Reading a movie: frames mapped or read with O_DIRECT into aligned buffers, checksums verified."""
from __future__ import annotations

import collections
import errno
import json
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from duckling.errors import DucklingError
from duckling.io import read_json
from duckling.movie.format import MANIFEST, PAGE, Shard, _shard_paths, checksum, frame_key, read_shard

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
        got = checksum(bits)
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
