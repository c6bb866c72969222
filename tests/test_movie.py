"""The movie: bit-exact frames, stock safetensors files, checksums, atomic shards, resume."""
import errno
import fcntl
import inspect
import json
import os
import time
import tracemalloc

import numpy as np
import pytest
import torch
from safetensors import safe_open

from duckling import movie as M
from duckling.errors import DucklingError
from duckling.movie import (
    Movie,
    MovieWriter,
    bf16_bits_to_float32,
    check_disk,
    estimate_bytes,
    float32_to_bf16_bits,
    truncate,
    write_movie,
)

ROWS, D = 300, 32


def weights(step, rows=ROWS, d=D):
    g = torch.Generator().manual_seed(step)
    w = torch.randn(rows, d, generator=g) * torch.logspace(-6, 3, d)  # many exponents
    w[0, :4] = torch.tensor([float("inf"), -float("inf"), 0.0, -0.0])
    return w


def bits_of(w):
    return w.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def record(movie_dir, steps, flush_at=(), shard_frames=4, **kw):
    with MovieWriter(movie_dir, ROWS, D, shard_frames, **kw) as w:
        for s in steps:
            w.write(s, weights(s))
            if s in flush_at:
                w.flush()


def test_bf16_helpers_match_torch():
    x = torch.randn(4096) * torch.logspace(-30, 30, 4096)
    # halfway cases, overflow to inf, a subnormal
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 3.4e38, -3.4e38, 1e-40])
    x = torch.cat([x, ties, torch.tensor([float("inf"), -float("inf")])])
    assert np.array_equal(float32_to_bf16_bits(x.numpy()), bits_of(x))
    b = bits_of(x)
    assert np.array_equal(bf16_bits_to_float32(b), x.to(torch.bfloat16).float().numpy())
    assert float32_to_bf16_bits(np.float32([np.nan]))[0] == 0x7FC0


def test_round_trip_bit_exact_and_stock_safetensors(tmp_path):
    steps = list(range(7))
    record(tmp_path, steps, shard_frames=3, queue_frames=2, meta={"record_every": 1, "run": "t"})
    mv = Movie(tmp_path)
    assert mv.steps.tolist() == steps and len(mv) == 7 and (mv.rows, mv.d) == (ROWS, D)
    assert mv.frame_bytes == ROWS * D * 2
    for s in steps:
        assert np.array_equal(mv.frame(s), bits_of(weights(s)))
    assert [p.name for p in sorted(tmp_path.glob("W_movie_*"))] == [
        "W_movie_0000000.safetensors", "W_movie_0000003.safetensors", "W_movie_0000006.safetensors"]
    for p in sorted(tmp_path.glob("W_movie_*.safetensors")):
        with safe_open(p, framework="pt") as f:
            meta = f.metadata()
            assert meta["hash"] == "crc32" and meta["version"] == "1"
            file_steps = json.loads(meta["steps"])
            assert sorted(f.keys()) == [f"step_{s:07d}" for s in file_steps]
            for s in file_steps:
                t = f.get_tensor(f"step_{s:07d}")
                assert t.dtype == torch.bfloat16 and t.shape == (ROWS, D)
                assert torch.equal(t.view(torch.int16), weights(s).to(torch.bfloat16).view(torch.int16))
    man = json.loads((tmp_path / "manifest.json").read_text())["movies"]["W"]
    assert man["rows"] == ROWS and man["d"] == D and man["dtype"] == "BF16" and man["meta"]["run"] == "t"
    assert [e["steps"] for e in man["shards"]] == [[0, 1, 2], [3, 4, 5], [6]]
    assert mv.verify(progress=False) == 7


def test_accepts_bf16_numpy_and_bits(tmp_path):
    ws = [weights(s) for s in range(3)]
    mv = write_movie(tmp_path, [(0, ws[0].to(torch.bfloat16)), (1, ws[1].numpy()), (2, bits_of(ws[2]))])
    for s in range(3):
        assert np.array_equal(mv.frame(s), bits_of(ws[s]))


def test_random_access_range_and_bounded_memory(tmp_path):
    rows, d = 10_000, 128
    fb = rows * d * 2
    frames = [(s * 5, torch.randn(rows, d)) for s in range(8)]
    mv = write_movie(tmp_path, frames, shard_frames=8, meta={"record_every": 5})
    assert len(list(tmp_path.glob("W_movie_*"))) == 1
    mv = Movie(tmp_path)
    tracemalloc.start()
    bits = mv.frame(20)
    total = int(bits.sum(dtype=np.uint64))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < fb // 4, peak  # the frame is a view of the file, not a copy of the shard
    assert total == int(bits_of(frames[4][1]).sum(dtype=np.uint64))
    assert isinstance(bits.base, np.memmap) and not bits.flags.writeable
    assert np.array_equal(bits, bits_of(frames[4][1]))

    it = mv.frames(10, 30)
    assert inspect.isgenerator(it)
    tracemalloc.start()
    got = [(s, int(b[0, 0])) for s, b in mv.frames(10, 30, verify=True)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * fb, peak
    assert got == [(s, int(bits_of(w)[0, 0])) for s, w in frames if 10 <= s < 30]
    assert [s for s, _ in mv.frames(start=26)] == [30, 35]
    assert [s for s, _ in mv.frames(stop=1)] == [0]
    assert mv.verify(progress=False) == 8
    with pytest.raises(DucklingError, match="no W frame at step 7"):
        mv.frame(7)


def test_frame_checksums_are_zlib_crc32(tmp_path):
    """ISA-L computes them; any CRC-32 tool (zlib, `python -m zlib`, gzip trailers) agrees."""
    import zlib

    rng = np.random.default_rng(5)
    frames = [(s, rng.integers(0, 1 << 16, (300, 16), dtype=np.uint16)) for s in range(3)]
    mv = M.write_movie(tmp_path / "m", frames, shard_frames=2)
    for s, f in frames:
        assert mv.checksum(s) == f"{zlib.crc32(f.tobytes()):08x}"
    assert M.checksum(b"duckling") == f"{zlib.crc32(b'duckling'):08x}"


def test_checksum_mismatch_names_shard_and_step(tmp_path):
    record(tmp_path, range(6), shard_frames=3)
    shard = tmp_path / "W_movie_0000003.safetensors"
    s = M.read_shard(shard)
    pos = s.data_start + 1 * s.frame_bytes + 1234  # inside step 4
    data = bytearray(shard.read_bytes())
    data[pos] ^= 0x40
    shard.write_bytes(bytes(data))
    mv = Movie(tmp_path)
    mv.frame(4)  # plain reads do not check
    mv.frame(3, verify=True)
    with pytest.raises(DucklingError, match=r"W_movie_0000003\.safetensors: frame step_0000004 fails"):
        mv.verify(progress=False)
    with pytest.raises(DucklingError, match="step_0000004"):
        list(mv.frames(verify=True))


def test_unfinished_shard_has_no_final_name_and_is_ignored(tmp_path):
    w = MovieWriter(tmp_path, ROWS, D, shard_frames=4)
    for s in range(6):
        w.write(s, weights(s))
    w._work.join()  # the thread has written all six, the second shard is half done
    assert [p.name for p in tmp_path.glob("W_movie_*")] == ["W_movie_0000000.safetensors"]
    temps = list(tmp_path.glob(".W_movie_0000004.safetensors.tmp-*"))
    assert len(temps) == 1
    assert Movie(tmp_path).steps.tolist() == [0, 1, 2, 3]
    w.close()
    assert not list(tmp_path.glob(".*tmp*"))
    assert Movie(tmp_path).steps.tolist() == list(range(6))


def test_no_movie_is_a_clear_error(tmp_path):
    with pytest.raises(DucklingError, match=r"no movie; run `invoke train` first"):
        Movie(tmp_path / "movies" / "demo")
    (tmp_path / ".W_movie_0000000.safetensors.tmp-1").write_bytes(b"junk")
    with pytest.raises(DucklingError, match="no movie"):
        Movie(tmp_path)


def test_flush_truncate_and_resume(tmp_path):
    record(tmp_path, range(10), flush_at=(2, 6), shard_frames=4)
    assert [s.steps for s in Movie(tmp_path).shards] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    stale = tmp_path / ".W_movie_0000099.safetensors.tmp-123"
    stale.write_bytes(b"x")

    gone = truncate(tmp_path, 6)
    assert [p.name for p in gone] == ["W_movie_0000007.safetensors"] and not stale.exists()
    mv = Movie(tmp_path)
    assert mv.steps.tolist() == list(range(7)) and mv.verify(progress=False) == 7

    with MovieWriter(tmp_path, ROWS, D, shard_frames=4) as w:  # as a resumed training continues it
        for s in range(7, 12):
            w.write(s, weights(s))
    mv = Movie(tmp_path)
    assert mv.steps.tolist() == list(range(12)) and mv.verify(progress=False) == 12
    assert all(np.array_equal(b, bits_of(weights(s))) for s, b in mv.frames())

    truncate(tmp_path, 4)  # mid-shard: the shard is rewritten shorter, bits unchanged
    mv = Movie(tmp_path)
    assert [s.steps for s in mv.shards] == [[0, 1, 2], [3, 4]] and mv.verify(progress=False) == 5
    assert all(np.array_equal(b, bits_of(weights(s))) for s, b in mv.frames())


def test_steps_must_increase_and_shapes_match(tmp_path):
    record(tmp_path, range(3))
    with MovieWriter(tmp_path, ROWS, D, 4) as w:
        with pytest.raises(DucklingError, match="steps must increase"):
            w.write(2, weights(2))
        with pytest.raises(DucklingError, match="expected"):
            w.write(3, torch.zeros(ROWS + 1, D))
    with pytest.raises(DucklingError, match="this run records"):
        MovieWriter(tmp_path, ROWS, D + 1, 4)


def test_verify_checks_spacing(tmp_path):
    record(tmp_path, [0, 2, 4], meta={"record_every": 2})
    assert Movie(tmp_path).verify(progress=False) == 3
    record(tmp_path / "gap", [0, 1, 3])
    with pytest.raises(DucklingError, match="not consecutive multiples"):
        Movie(tmp_path / "gap").verify(progress=False)


def test_tied_and_untied_share_the_folder(tmp_path):
    record(tmp_path, range(3))
    record(tmp_path, range(3), name="Wout")
    assert M.movie_names(tmp_path) == ["W", "Wout"]
    man = json.loads((tmp_path / "manifest.json").read_text())["movies"]
    assert set(man) == {"W", "Wout"}
    assert Movie(tmp_path, "Wout").verify(progress=False) == 3
    assert Movie(tmp_path).steps.tolist() == [0, 1, 2]


def test_writer_thread_error_surfaces(tmp_path, monkeypatch):
    def boom(data):
        raise OSError(28, "No space left on device")

    w = MovieWriter(tmp_path, ROWS, D, 4, queue_frames=2)
    monkeypatch.setattr("duckling.movie.writer.checksum", boom)
    w.write(0, weights(0))  # returns at once; the thread fails behind it
    with pytest.raises(OSError, match="No space left"):
        for s in range(1, 50):
            w.write(s, weights(s))
            time.sleep(0.001)
        w.flush()
    with pytest.raises(OSError):
        w.close()
    assert not list(tmp_path.glob("*movie*")) and not list(tmp_path.glob(".*tmp*"))


def test_disk_check_and_estimate(tmp_path):
    full = estimate_bytes(10_000, 128, 14_270)
    assert 36.5e9 < full < 36.6e9
    check_disk(tmp_path / "movies" / "x", 1000)
    with pytest.raises(DucklingError) as e:
        check_disk(tmp_path / "movies" / "run", 10**18)
    msg = str(e.value)
    assert "\n" not in msg and "needs 1e+09 GB" in msg
    assert "free on that disk" in msg and "record_every=N" in msg


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_frames_are_copied_async_and_exact(tmp_path):
    ws = [weights(s).cuda() for s in range(6)]
    with MovieWriter(tmp_path, ROWS, D, 4) as w:
        for s, x in enumerate(ws):
            w.write(s, x)
            x.mul_(2)  # the step after: the frame must hold the value at write time
    mv = Movie(tmp_path)
    assert all(np.array_equal(mv.frame(s), bits_of(weights(s))) for s in range(6))


# ---- streaming reads ---------------------------------------------------------------------------
def paged_movie(tmp_path, n=9, rows=256, d=16):
    """Frames of whole 4 KiB pages, which O_DIRECT can read."""
    w = [(s, float32_to_bf16_bits(weights(s, rows, d).numpy())) for s in range(n)]
    return write_movie(tmp_path / "paged", w, shard_frames=4), w


def direct_works(path) -> bool:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except (OSError, AttributeError):
        return False


@pytest.mark.parametrize("direct", [True, False])
def test_frame_reader_reads_what_was_written(tmp_path, direct):
    mv, want = paged_movie(tmp_path)
    buf, stride = M.aligned_frames(2, mv.rows, mv.d)
    slots = [np.frombuffer(buf, np.uint16, count=mv.rows * mv.d, offset=k * stride).reshape(mv.rows, mv.d)
             for k in range(2)]
    with M.FrameReader(mv, direct=direct) as r:
        for i, (step, bits) in enumerate(want):
            assert r.read(i, slots[i % 2]) == step and np.array_equal(slots[i % 2], bits)
        assert r._fd_direct == (direct and direct_works(mv.shards[-1].path))
    odd = np.empty(mv.rows * mv.d + 1, np.uint16)[1:].reshape(mv.rows, mv.d)  # not page-aligned
    with M.FrameReader(mv, direct=True) as r:
        r.read(5, odd)
        assert np.array_equal(odd, want[5][1]) and not r._fd_direct  # read through the page cache instead
    with pytest.raises(DucklingError, match="C-contiguous uint16"):
        M.FrameReader(mv).read(0, np.empty((mv.rows, mv.d), np.float32))


def test_frame_reader_falls_back_when_the_file_system_refuses_direct_reads(tmp_path, monkeypatch):
    mv, want = paged_movie(tmp_path)
    preadv = os.preadv

    def refusing(fd, bufs, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return preadv(fd, bufs, offset)

    monkeypatch.setattr("duckling.movie.reader.os.preadv", refusing)
    assert [step for step, _ in mv.stream()] == [s for s, _ in want]
    assert all(np.array_equal(b, w) for (_, b), (_, w) in zip(mv.stream(verify=True), want))


def test_stream_checks_and_names_a_truncated_shard(tmp_path):
    mv, want = paged_movie(tmp_path)
    bits = want[2][1].copy()
    mv.check(2, bits)
    bits[3, 3] ^= 1
    with pytest.raises(DucklingError, match="step_0000002 fails its crc32 checksum"):
        mv.check(2, bits)
    last = mv.shards[-1].path
    with open(last, "r+b") as f:  # cut the last frame short after the movie was opened
        f.truncate(last.stat().st_size - 100)
    with pytest.raises(DucklingError, match=f"{last.name}: ends inside frame step_0000008"):
        list(mv.stream())
