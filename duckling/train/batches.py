"""The data order: seeded batches of the train stream, a fixed slice of the val stream."""
from __future__ import annotations

import numpy as np
import torch

from duckling.config import Config
from duckling.errors import DucklingError


class Batches:
    """Sequence j of the train stream is tokens[j*T : j*T + T + 1]; a seeded permutation orders them.

    Every train token is an input exactly once and a target exactly once (the first is never a
    target, the last never an input).
    """

    def __init__(self, cfg: Config, train: np.ndarray, device: str):
        self.B, self.T = cfg.batch_size, cfg.ctx
        n_seq = cfg.steps * self.B
        if train.size < n_seq * self.T + 1:
            raise DucklingError(f"corpus holds {train.size:,} train tokens, the run needs {n_seq * self.T + 1:,}; "
                                f"rebuild it with `invoke corpus --run {cfg.run} --force`")
        if int(train.max()) >= cfg.live_vocab:  # the guard: phantom ids never enter a batch
            raise DucklingError(f"corpus contains id {int(train.max())} >= live_vocab {cfg.live_vocab}")
        # on a GPU the whole stream lives there (int32: 235 MB at 100%), so a batch is a gather on the
        # device: no host-to-device copy to wait for, and a CUDA graph can replay it
        on_cpu = torch.device(device).type == "cpu"
        self.tokens = torch.from_numpy(train.astype(np.int64 if on_cpu else np.int32)).to(device)
        self.order = torch.randperm(n_seq, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
        self.offsets = torch.arange(self.T + 1, device=device)
        self.rows = torch.arange(self.B, device=device)
        self.device, self.live = device, cfg.live_vocab

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = self.order[step * self.B:(step + 1) * self.B]
        xy = self.tokens[seqs[:, None] * self.T + self.offsets].long()
        return xy[:, :-1], xy[:, 1:]

    def gather(self, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """get(step) for a step held in a 0-d device tensor: fixed shapes and addresses, no host value."""
        seqs = self.order.index_select(0, step * self.B + self.rows)
        xy = self.tokens[seqs[:, None] * self.T + self.offsets].long()
        return xy[:, :-1], xy[:, 1:]


def val_batches(cfg: Config, val: np.ndarray) -> list[torch.Tensor]:
    """A fixed held-out slice: the first eval_batches x batch_size sequences of the val stream."""
    T, B = cfg.ctx, cfg.batch_size
    n = min(cfg.eval_batches * B, (val.size - 1) // T)
    if n < 1:
        raise DucklingError(f"validation stream has {val.size} tokens, fewer than one sequence of {T + 1}; "
                            f"raise --set val_tokens")
    v = torch.from_numpy(val[: n * T + 1].astype(np.int64))
    seqs = v[torch.arange(n)[:, None] * T + torch.arange(T + 1)]
    return list(seqs.split(B))
