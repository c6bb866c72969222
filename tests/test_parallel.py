"""One pass over a movie: every frame read once, its neighbours right, results in order, in this
process or in worker processes, and errors that name what failed."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from duckling import movie
from duckling.analyze import parallel
from duckling.errors import DucklingError

ROWS, D = 256, 16  # 8 KiB frames: whole pages, so the reader can use O_DIRECT


def labelled(i: int) -> np.ndarray:
    """Frame i's bits: every value is i (as a bf16 pattern), the first row says i too."""
    return np.full((ROWS, D), i, np.uint16)


def make(tmp_path, n, shard_frames=4) -> movie.Movie:
    return movie.write_movie(tmp_path / "movie", [(10 * i, labelled(i)) for i in range(n)], shard_frames=shard_frames)


def who(i, cur, prev, first, back, offset=0):
    """What a frame function saw: its own label and those of prev, first and back (-1: None)."""
    lab = lambda b: -1 if b is None else int(b[0, 0])
    return i + offset, lab(cur), lab(prev), lab(first), lab(back)


def fails_at(i, cur, prev, first, back, bad, how):
    if i == bad:
        if how == "duckling":
            raise DucklingError(f"frame {i} is bad")
        if how == "die":
            os._exit(3)
        raise ValueError(f"unexpected at {i}")
    return i


def shared_segments() -> set[str]:
    """The shared-memory segments that exist now (multiprocessing names them psm_*)."""
    return {f for f in os.listdir(parallel.SHM_DIR) if f.startswith("psm_")} if os.path.isdir(parallel.SHM_DIR) else set()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("n, k", [(1, 3), (5, 1), (40, 3), (40, 10)])
def test_every_frame_once_in_order_with_its_neighbours(tmp_path, monkeypatch, workers, n, k):
    mv = make(tmp_path, n)
    reads = []
    read = movie.FrameReader.read
    monkeypatch.setattr(movie.FrameReader, "read", lambda self, i, out: reads.append(i) or read(self, i, out))
    before = shared_segments()
    walk = parallel.Pass(mv, who, (1000,), k=k, workers=workers)
    got = list(walk)
    assert [i for i, _ in got] == list(range(n))  # in order, each once
    for i, (j, cur, prev, first, back) in got:
        assert (j, cur, prev, first, back) == (i + 1000, i, i - 1 if i else -1, 0, i - k if i >= k else -1)
    assert reads == list(range(n)) and walk.frames_read == n  # read once each, front to back
    assert shared_segments() <= before  # the ring's shared memory is gone


@pytest.mark.parametrize("workers", [0, 2])
def test_errors_in_a_frame_end_the_pass_with_their_message(tmp_path, workers):
    mv = make(tmp_path, 12)
    before = shared_segments()
    with pytest.raises(DucklingError, match="frame 7 is bad"):
        list(parallel.Pass(mv, fails_at, (7, "duckling"), k=2, workers=workers))
    with pytest.raises((ValueError, RuntimeError), match="unexpected at 5"):  # a worker's traceback comes back as text
        list(parallel.Pass(mv, fails_at, (5, "other"), k=2, workers=workers))
    assert shared_segments() <= before


def test_a_worker_that_dies_is_reported(tmp_path):
    mv = make(tmp_path, 12)
    before = shared_segments()
    with pytest.raises(DucklingError, match="worker process died"):
        list(parallel.Pass(mv, fails_at, (4, "die"), k=2, workers=2))
    assert shared_segments() <= before


def test_a_corrupt_frame_is_caught_by_whoever_computes_it(tmp_path):
    mv = make(tmp_path, 9)
    s = mv.shards[1]
    with open(s.path, "r+b") as f:  # one flipped bit in frame 5 (second shard, second frame)
        f.seek(s.data_start + s.frame_bytes + 100)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    for workers in (0, 2):
        with pytest.raises(DucklingError, match="step_0000050 fails its crc32 checksum"):
            list(parallel.Pass(movie.Movie(mv.dir), who, k=1, workers=workers))
    assert len(list(parallel.Pass(movie.Movie(mv.dir), who, k=1, verify=False))) == 9


def test_stopping_early_releases_everything(tmp_path):
    mv = make(tmp_path, 60)
    before = shared_segments()
    it = iter(parallel.Pass(mv, who, k=2, workers=2))
    assert [next(it)[0] for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer stops: reader and workers end, the ring is unlinked
    assert shared_segments() <= before


def test_workers_do_not_rerun_an_unguarded_main_script(tmp_path):
    """A script that calls a pass at top level, with no `if __name__ == "__main__"` guard: spawned
    workers would normally run it again."""
    make(tmp_path, 30)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        from duckling.analyze import parallel
        from duckling import movie
        from test_parallel import who
        out = list(parallel.Pass(movie.Movie({str(tmp_path / "movie")!r}), who, k=2, workers=2))
        print("frames", len(out))
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n").count("frames 30") == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_a_read_error_ends_the_pass_and_names_the_file(tmp_path, workers):
    mv = make(tmp_path, 12)
    last = mv.shards[-1].path
    with open(last, "r+b") as f:  # the last shard loses half a frame after the movie was opened
        f.truncate(last.stat().st_size - mv.frame_bytes // 2)
    with pytest.raises(DucklingError, match=f"{last.name}: ends inside frame step_0000110"):
        list(parallel.Pass(mv, who, k=2, workers=workers))
