"""Recording a movie: shards streamed behind a reserved header by a writer thread."""
from __future__ import annotations

import os
import queue
import struct
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from duckling.errors import DucklingError
from duckling.movie.format import (
    HASH,
    MANIFEST,
    Shard,
    _encode,
    _header,
    _manifest_shape,
    _remove_temps,
    _shard_paths,
    _write_manifest,
    checksum,
    header_reserve,
    movie_names,
    read_shard,
    shard_name,
)
from duckling.movie.reader import Movie


class _ShardFile:
    """A shard being written: frames streamed after a reserved header, renamed when finished."""

    def __init__(self, movie_dir: Path, name: str, first_step: int, rows: int, d: int, capacity: int,
                 fingerprint: str = ""):
        self.final = movie_dir / shard_name(name, first_step)
        self.tmp = movie_dir / f".{self.final.name}.tmp-{os.getpid()}"
        self.name, self.rows, self.d, self.fingerprint = name, rows, d, fingerprint
        self.reserve = header_reserve(rows, d, capacity, name, fingerprint)
        self.steps: list[int] = []
        self.sums: list[str] = []
        self.f = open(self.tmp, "wb")
        self.f.seek(8 + self.reserve)

    def append(self, step: int, data) -> None:
        self.sums.append(checksum(data))
        self.f.write(data)
        self.steps.append(step)

    def finish(self) -> Shard:
        head = _encode(_header(self.rows, self.d, self.steps, self.sums, self.name, self.fingerprint))
        if len(head) > self.reserve:
            raise RuntimeError(f"{self.tmp}: {len(head)} header bytes overflow the {self.reserve} reserved")
        self.f.seek(0)
        self.f.write(struct.pack("<Q", self.reserve) + head + b" " * (self.reserve - len(head)))
        self.f.close()
        os.replace(self.tmp, self.final)
        return Shard(self.final, self.steps, self.sums, self.rows, self.d, 8 + self.reserve, HASH,
                     self.fingerprint)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)



# ---- writer ----------------------------------------------------------------------------------
class MovieWriter:
    """Record frames without stalling training.

    `write` converts to bf16 and copies into one of `queue_frames` preallocated host buffers, then
    returns; a background thread checksums and appends to the current shard. When the thread falls
    behind, `write` waits for a free buffer: frames are never dropped, and memory stays bounded. A
    failure in the thread is raised by the next write/flush/close.

    A weight on a GPU is rounded to bf16 there, into a device buffer of its own (one kernel in the
    caller's stream, ordered before the next step changes the weight), then copied to pinned host
    memory on the writer's own stream, so the copy overlaps the next step; the thread waits on
    that copy's event, the caller never does.
    """

    def __init__(self, movie_dir, rows: int, d: int, shard_frames: int = 128, name: str = "W",
                 meta: dict | None = None, queue_frames: int = 8):
        if shard_frames < 1 or queue_frames < 1:
            raise DucklingError(f"shard_frames={shard_frames}, queue_frames={queue_frames}: "
                                f"must be 1 or more")
        self.dir = Path(movie_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows, self.d, self.shard_frames, self.name = rows, d, shard_frames, name
        self.meta, self.queue_frames = dict(meta or {}), queue_frames
        _remove_temps(self.dir, name)  # any temp file now belongs to a dead writer
        self.shards = [read_shard(p) for p in _shard_paths(self.dir, name)]
        for s in self.shards:
            if (s.rows, s.d) != (rows, d):
                raise DucklingError(f"{s.path}: frames are {s.rows} x {s.d}, this run records {rows} x {d}; "
                                    f"use another movie folder or delete this one")
        self.last_step = self.shards[-1].steps[-1] if self.shards else -1
        self._write_manifest(fresh=not self.shards)
        self._bufs = None  # torch tensors, allocated on the first write (pinned if it comes from CUDA)
        self._dev = self._done = self._stream = None  # a CUDA frame's device copies, their events, the copy stream
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
            self._allocate(w)
        i = self._free.get()  # blocks while the thread is behind
        if self._error is not None:
            self._free.put(i)
            self._check()
        buf = self._bufs[i]
        event = None
        if w.dtype == torch.int16:
            buf.view(torch.int16).copy_(w)
        elif w.is_cuda:
            event = self._copy_from_cuda(i, w)
        else:  # .to() rounds to nearest even, and faster than a converting copy_
            buf.copy_(w.to(torch.bfloat16))
        self.last_step = step
        self._work.put(("frame", step, i, event))

    def _allocate(self, w) -> None:
        import torch

        pin = w.is_cuda
        self._bufs = [torch.empty((self.rows, self.d), dtype=torch.bfloat16, pin_memory=pin)
                      for _ in range(self.queue_frames)]
        self._views = [b.view(torch.int16).numpy() for b in self._bufs]
        if pin:
            self._dev = [torch.empty_like(b, device=w.device) for b in self._bufs]
            self._done = [torch.cuda.Event(blocking=True) for _ in self._bufs]  # the thread sleeps, not spins
            self._stream = torch.cuda.Stream(w.device)
        for i in range(self.queue_frames):
            self._free.put(i)

    def _copy_from_cuda(self, i: int, w):
        """Round w into device buffer i in the caller's stream, copy it to host buffer i on the copy
        stream; returns the event the thread waits on. Buffer i is reused only after that wait."""
        import torch

        self._dev[i].copy_(w)  # a converting copy rounds to nearest even, as .to(torch.bfloat16)
        self._stream.wait_stream(torch.cuda.current_stream(w.device))
        with torch.cuda.stream(self._stream):
            self._bufs[i].copy_(self._dev[i], non_blocking=True)
        self._done[i].record(self._stream)
        return self._done[i]

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
        self._bufs = self._views = self._dev = self._done = self._stream = None
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
            self._cur = _ShardFile(self.dir, self.name, step, self.rows, self.d, self.shard_frames,
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
                out = _ShardFile(movie_dir, n, s.steps[0], s.rows, s.d, len(keep), s.fingerprint)
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
