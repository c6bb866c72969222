"""The movie (format.py, writer.py, reader.py): W (rows x d, bf16) after every recorded step, as plain safetensors shards.

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
from duckling.movie.format import (
                                   HASH,
                                   MANIFEST,
                                   PAGE,
                                   Shard,
                                   bf16_bits_to_float32,
                                   check_disk,
                                   checksum,
                                   estimate_bytes,
                                   float32_to_bf16_bits,
                                   gb,
                                   movie_names,
                                   read_shard,
)
from duckling.movie.reader import FrameReader, Movie, aligned_frames, check_complete, frame_stride
from duckling.movie.writer import MovieWriter, truncate, write_movie

__all__ = ["HASH", "MANIFEST", "PAGE", "Shard", "bf16_bits_to_float32", "check_disk", "checksum", "estimate_bytes",
           "float32_to_bf16_bits", "gb", "movie_names", "read_shard", "FrameReader", "Movie", "aligned_frames",
           "check_complete", "frame_stride", "MovieWriter", "truncate", "write_movie"]
