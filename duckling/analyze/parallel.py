"""One pass over a movie with its frames in flight: every frame read once, computed in parallel,
results handed back in frame order.

A per-frame function fn(i, cur, prev, first, back, *args) sees frame i, the previous frame, frame 0
and the frame k back (None where there is none), as uint16 bf16 bits. `Pass` calls it for every
frame and yields (i, result) in order:

- A reader thread reads each frame once, front to back, straight into a ring of frame slots
  (movie.FrameReader: O_DIRECT where the system allows, so the CPU copies nothing and the page
  cache is left alone). Slot 0 holds frame 0 for the whole pass; frame i >= 1 takes slot
  1 + (i - 1) % (n - 1), and waits until the frame it replaces is no longer anyone's previous or
  k-back frame. Memory is the ring (k + 2 * workers + a few slots) whatever the movie's length.
- `workers` processes compute frames side by side from the ring, which lives in shared memory
  (separate processes, not threads: the per-frame glue is Python, and threads sharing one
  interpreter lock scale worse than processes; bench/bench_analyze.py measures it). Frame
  i goes to worker i % workers, over a pipe each way. Each worker verifies the checksum of the
  frame it computes before using it. With workers=0 the calling thread computes, while the reader
  thread still reads ahead.
- Results come back out of order and are yielded in frame order.

Errors in the reader or a worker end the pass with that error; a worker that dies is reported.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import os
import queue
import shutil
import signal
import sys
import threading
import traceback
import types
from multiprocessing import shared_memory
from typing import Callable

import numpy as np

from duckling import movie
from duckling.errors import DucklingError

SHM_DIR = "/dev/shm"  # where POSIX shared memory lives on Linux (64 MB by default in Docker)
_POLL = 0.5  # seconds between checks that the workers are alive while waiting for a result


def slots_needed(k: int, workers: int, ahead: int = 2) -> int:
    """Ring slots for a pass: frame 0, the k frames back and the current one, two per worker in
    flight, and `ahead` frames read before anyone needs them."""
    return k + 2 + 2 * max(1, workers) + ahead


def shared_room() -> int | None:
    """Bytes free for shared memory (None where there is no /dev/shm to measure)."""
    try:
        return shutil.disk_usage(SHM_DIR).free
    except OSError:
        return None


class _Ring:
    """n frame slots, each on a DIRECT_ALIGN boundary: shared memory when name is given or shared
    is set, an anonymous mapping otherwise."""

    def __init__(self, n: int, rows: int, d: int, shared: bool = False, name: str | None = None):
        self.n, self.shape = n, (rows, d)
        stride = movie.frame_stride(rows, d)
        self.shm = None
        if name is not None or shared:
            # a worker attaches by name; its spawn shares the creator's resource tracker, so the
            # segment stays registered once, and the creator unlinks it
            self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=n * stride)
            buf = self.shm.buf
        else:
            buf, stride = movie.aligned_frames(n, rows, d)
        self.frames = [np.frombuffer(buf, np.uint16, count=rows * d, offset=s * stride).reshape(rows, d)
                       for s in range(n)]

    def slot(self, i: int) -> int:
        return 0 if i == 0 else 1 + (i - 1) % (self.n - 1)

    def views(self, i: int, k: int) -> tuple:
        """(cur, prev, first, back) of frame i."""
        f = self.frames
        return (f[self.slot(i)], f[self.slot(i - 1)] if i else None, f[0], f[self.slot(i - k)] if i >= k else None)

    def close(self, unlink: bool = False) -> None:
        self.frames = []
        if self.shm is not None:
            self.shm.close()
            if unlink:
                self.shm.unlink()
            self.shm = None


class _Failure:
    """An exception raised in a worker, carried back as text (not every exception pickles)."""

    def __init__(self, e: BaseException):
        self.ducking = isinstance(e, DucklingError)
        self.message = str(e) if self.ducking else "".join(traceback.format_exception(e)).rstrip()


def _compute(fn, i, ring, k, mv, args):
    cur, prev, first, back = ring.views(i, k)
    if mv is not None:
        mv.check(i, cur)
    return fn(i, cur, prev, first, back, *args)


def _work(spec, tasks, results) -> None:
    """A worker process: (fn, args, movie to verify against or None) arrive first on `tasks`, then
    frame numbers until None; each frame's (i, result) goes back on `results`, and a failure to
    start as (-1, failure)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the pass stops
    ring = None
    try:
        fn, args, mv = tasks.recv()
        ring = _Ring(spec["slots"], *spec["shape"], name=spec["shm"])
        while (i := tasks.recv()) is not None:
            try:
                out = (i, _compute(fn, i, ring, spec["k"], mv, args))
            except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
                out = (i, _Failure(e))
            results.send(out)
    except (EOFError, BrokenPipeError):  # the parent has gone
        pass
    except BaseException as e:  # noqa: BLE001 - could not start: the parent says why
        with contextlib.suppress(OSError):
            results.send((-1, _Failure(e)))
    finally:
        if ring is not None:
            ring.close()


@contextlib.contextmanager
def _spawning():
    """While workers are spawned: one BLAS/OpenMP thread each, read from the environment at their
    start (the workers are the parallelism; idle BLAS threads spinning beside them cost a core),
    and no __main__ for them to re-run. A spawned process normally re-imports the parent's main
    script, which runs any unguarded code in it again (a script calling analyze would start
    workers of its own); the workers need only duckling's modules, which they import by name."""
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {key: os.environ.get(key) for key in keys}
    main = sys.modules.get("__main__")
    os.environ.update({key: "1" for key in keys})
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
        for key, v in saved.items():
            if v is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = v


def _stop(workers: list) -> None:
    """Ask each worker to finish, then join it (terminate one that does not) and close its pipes."""
    for _, task_w, _ in workers:
        with contextlib.suppress(OSError):
            task_w.send(None)
    for p, task_w, res_r in workers:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join()
        task_w.close()
        res_r.close()


class Pass:
    """Iterate (i, fn(i, cur, prev, first, back, *args)) over every frame of mv in order.

    fn must be a module-level function and args picklable (workers import fn by name). k: how far
    back `back` reaches (>= 1). workers: processes computing frames (0: the calling thread).
    verify: check each frame's checksum before it is used. direct: O_DIRECT reads where possible.
    After the pass, `frames_read` counts the frames read and `workers` the processes used."""

    def __init__(self, mv: movie.Movie, fn: Callable, args: tuple = (), k: int = 1, workers: int = 0,
                 verify: bool = True, direct: bool = True, ahead: int = 2):
        self.mv, self.fn, self.args, self.k = mv, fn, tuple(args), max(1, int(k))
        self.verify, self.direct = verify, direct
        self.workers = max(0, int(workers))
        self.slots = slots_needed(self.k, self.workers, ahead)
        self.frames_read = 0

    # ---- reading --------------------------------------------------------------------------
    def _read(self, ring: _Ring, put, done: list, cond: threading.Condition, stop: threading.Event) -> None:
        """Reader thread: frame after frame into its slot, once the slot is free; put(i) each."""
        k, R = self.k, ring.n
        try:
            with movie.FrameReader(self.mv, self.direct) as reader:
                for i in range(len(self.mv)):
                    with cond:  # the frame this slot held must be done as anyone's prev or back
                        while not stop.is_set() and i >= R and done[0] < i - R + 2 + k:
                            cond.wait(0.1)
                    if stop.is_set():
                        return
                    reader.read(i, ring.frames[ring.slot(i)])
                    self.frames_read += 1
                    put(i)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failure(e))

    def __iter__(self):
        mv, T = self.mv, len(self.mv)
        ring = _Ring(self.slots, mv.rows, mv.d, shared=self.workers > 0)
        done, cond, stop = [0], threading.Condition(), threading.Event()
        local: queue.Queue = queue.Queue()  # from the reader: ("read", i) without workers; ("failed", f)
        workers: list[tuple] = []  # (process, task pipe, result pipe): a pipe each way, no locks between them
        held: dict[int, object] = {}
        reader = None
        try:
            if self.workers:
                self._start(ring, workers)

            def put(i):  # a frame is in its slot: to the worker whose turn it is, or to this thread
                if isinstance(i, _Failure):
                    local.put(("failed", i))
                elif workers:
                    with contextlib.suppress(OSError):  # a worker that died: its result pipe says so
                        workers[i % len(workers)][1].send(i)
                else:
                    local.put(("read", i))

            reader = threading.Thread(target=self._read, args=(ring, put, done, cond, stop), daemon=True,
                                      name="duckling-reader")
            reader.start()
            check = mv if self.verify else None
            while done[0] < T:
                for i, res in (self._from_workers(workers, local) if workers else
                               self._here(local, ring, check)):
                    if isinstance(res, _Failure):
                        self._raise(res)
                    held[i] = res
                while done[0] in held:
                    res = held.pop(done[0])
                    with cond:
                        done[0] += 1
                        cond.notify()
                    yield done[0] - 1, res
        finally:
            stop.set()
            with cond:
                cond.notify()
            if reader is not None:
                reader.join()
            _stop(workers)
            ring.close(unlink=True)

    def _start(self, ring: _Ring, workers: list) -> None:
        """Start the worker processes (appended to `workers` as they start, so a failure stops them)."""
        mv, ctx = self.mv, mp.get_context("spawn")
        spec = {"slots": ring.n, "shape": (mv.rows, mv.d), "shm": ring.shm.name, "k": self.k}
        with _spawning():
            for _ in range(self.workers):
                task_r, task_w = ctx.Pipe(duplex=False)
                res_r, res_w = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_work, args=(spec, task_r, res_w), daemon=True, name="duckling-analyze")
                p.start()
                task_r.close()
                res_w.close()
                workers.append((p, task_w, res_r))
        for _, task_w, _ in workers:  # after every start: each send waits for that child to import
            task_w.send((self.fn, self.args, mv if self.verify else None))

    def _here(self, local: queue.Queue, ring: _Ring, check) -> list:
        """Without workers: compute the next frame the reader has read, in this thread."""
        kind, i = local.get()
        if kind == "failed":
            self._raise(i)
        return [(i, _compute(self.fn, i, ring, self.k, check, self.args))]

    def _from_workers(self, workers: list, local: queue.Queue) -> list:
        """The results that have arrived (waiting up to _POLL s for one); raises what the reader or a
        worker reports, and a worker that died."""
        with contextlib.suppress(queue.Empty):
            self._raise(local.get_nowait()[1])
        out = []
        for conn in mp.connection.wait([w[2] for w in workers], timeout=_POLL):
            try:
                out.append(conn.recv())
            except (EOFError, OSError):
                p = next(w[0] for w in workers if w[2] is conn)
                p.join(timeout=1)
                raise DucklingError(f"analyze: a worker process died (exit code {p.exitcode}); rerun it, with "
                                    f"fewer workers if memory ran out") from None
        return out

    @staticmethod
    def _raise(f: _Failure):
        if f.ducking:
            raise DucklingError(f.message)
        raise RuntimeError(f"analyze: a frame failed in a worker:\n{f.message}")
