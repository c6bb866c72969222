"""Checkpoints: torch.save of plain state, wrapped with its sha256; never unpickles code."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from duckling.errors import DucklingError
from duckling.io import atomic_path, sha256_bytes

CHECKPOINT_FORMAT = "duckling-checkpoint-1"


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save of `state` (tensors, numbers, strings only), wrapped with the sha256 of its bytes."""
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "sha256": sha256_bytes(blob),
                    "state": torch.frombuffer(bytearray(blob), dtype=torch.uint8)}, tmp)


def load_checkpoint(path: Path, device: str, run: str) -> dict | None:
    """The state saved at `path` (None if there is none), after its checksum; never unpickles code."""
    if not path.exists():
        return None
    fix = f"delete it to train from step 0, or run `invoke train --run {run} --force`"
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
        if outer.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {outer.get('format')!r}")
        blob = outer["state"].numpy().tobytes()
        if sha256_bytes(blob) != outer["sha256"]:
            raise DucklingError(f"{path}: fails its sha256 checksum, the file is corrupt; {fix}")
        return torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
    except DucklingError:
        raise
    except Exception as e:  # truncated, empty, garbage or a pickle that is not plain data
        raise DucklingError(f"{path}: not a readable checkpoint ({type(e).__name__}); {fix}") from None
