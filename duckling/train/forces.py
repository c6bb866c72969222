"""The forces on token sets, logged while training: why the dead rows move.

For a dead row i of the tied matrix W (never an input, never a target) the loss gradient is

    g_i = (1/N) sum_n p_{n,i} h_n        (h_n the final hidden state at position n, p the softmax)

and AdamW moves it by  dw_i = -lr m_i / (sqrt(v_i) + eps) - lr wd w_i,  with m, v bias-corrected.
A coordinate whose |dw| is under half its bf16 ULP keeps its bf16 value (lattice.predicted_frozen):
in pure-bf16 the update is lost, with fp32 masters the frame does not change. Per step and per
token set S (phantom, natural dead, and the live tokens binned by their train count) a row of
runs/<run>/forces.npy holds:

    grad[S]         mean over S of g_i                                        (d)
    adam[S]         mean over S of a_i = m_i / (sqrt(v_i) + eps)              (d)
    adam_rms[S]     sqrt(mean over S's coordinates of a^2)
    decay_share[S]  |wd w|_S / (|a|_S + |wd w|_S), Frobenius norms over S's rows
    frozen_pred[S]  fraction of S's coordinates with |dw| < ulp(w) / 2
    hidden          mean over the step's positions of h_n                     (d)

Row k is step k (row 0, before any step, is NaN). Everything is computed on the device with a few
matrix-vector products against the sets' membership matrix into one fixed row (so a CUDA graph of
the step can hold it), copied into a buffer of LOG_EVERY rows after each step, and reaches the host
every LOG_EVERY steps with the metric rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from duckling.errors import DucklingError

FILE = "forces.npy"


def layout(set_names: list[str], d: int) -> np.dtype:
    """The row type of forces.npy: float32 fields only, so one float32 vector is one row."""
    S = len(set_names)
    return np.dtype([("grad", "<f4", (S, d)), ("adam", "<f4", (S, d)), ("adam_rms", "<f4", (S,)),
                     ("decay_share", "<f4", (S,)), ("frozen_pred", "<f4", (S,)), ("hidden", "<f4", (d,))])


def half_ulp_bf16(w: torch.Tensor) -> torch.Tensor:
    """ulp(bf16(w)) / 2 as float32: lattice.ulp's 2**(max(e, 1) - 134) / 2 for the biased exponent e
    of w rounded to bf16 (held to lattice.ulp by a test). The exponent bits alone, as a float, are
    2**(e - 127); times 2**-8 that is the half ULP, and the floor 2**-134 is zero's and e = 1's."""
    e = w.to(torch.bfloat16).float().view(torch.int32) & 0x7F800000
    return (e.view(torch.float32) * 2.0**-8).clamp_(min=2.0**-134)


class Forces:
    """The per-step rows, held on the device; `flush` writes them into forces.npy."""

    def __init__(self, run_dir: Path, sets: dict[str, np.ndarray], rows: int, d: int, steps: int, fresh: bool,
                 device: str, log_every: int):
        self.names = list(sets)
        member = torch.zeros(len(sets), rows)
        for j, ids in enumerate(sets.values()):
            if len(ids):
                member[j, torch.as_tensor(ids, dtype=torch.long)] = 1.0 / len(ids)
            else:
                member[j] = float("nan")  # an empty set has no mean
        self.mean = member.to(device)  # (S, rows): M @ x averages x's rows over each set
        self.dtype = layout(self.names, d)
        self.width = self.dtype.itemsize // 4
        self.buf = torch.full((log_every, self.width), float("nan"), device=device)
        self.cur = torch.full((self.width,), float("nan"), device=device)  # this step's row, at a fixed address
        self.steps: list[int] = []
        self.S, self.d = len(sets), d
        path = run_dir / FILE
        shape = (steps + 1,)
        if fresh or not path.exists():
            self.mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
            self.mm.view(np.float32)[:] = np.nan
        else:
            self.mm = np.lib.format.open_memmap(path, mode="r+")
            if self.mm.dtype != self.dtype or self.mm.shape != shape:
                raise DucklingError(f"{path}: made for other token sets or steps; retrain with "
                                    f"`invoke train --run {run_dir.name} --force`")
        self.hidden = torch.zeros(d, device=device)
        self.group = None

    def hook(self, module, inputs, output) -> None:
        """Forward hook on the final LayerNorm: the mean hidden state of this step's positions."""
        if module.training:
            self.hidden.copy_(output.detach().float().mean(dim=tuple(range(output.dim() - 1))))

    def before_step(self, grad: torch.Tensor, w: torch.Tensor) -> None:
        """After backward, before clipping: the sets' mean loss gradient; the weights before the step."""
        self.cur[: self.S * self.d] = (self.mean @ grad.float()).flatten()
        self.w_old = w.detach().float().clone()

    def after_step(self, w: torch.Tensor, opt, lr: float | torch.Tensor, wd: float) -> None:
        """After opt.step: the Adam direction and the update from AdamW's state, as torch applies it:
        w <- w (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps). `lr` may be a 0-d device tensor."""
        if self.group is None:  # W's parameter group, found once
            self.group = next(g for g in opt.param_groups if any(p is w for p in g["params"]))
        st, group = opt.state[w], self.group
        b1, b2 = group["betas"]
        t = st["step"].to(torch.float32)
        a = (st["exp_avg"] / (1 - b1 ** t)) / ((st["exp_avg_sq"] / (1 - b2 ** t)).sqrt() + group["eps"])
        decay = self.w_old * wd
        dw = -lr * (a + decay)
        S, d, M, row = self.S, self.d, self.mean, self.cur
        ms_a, ms_decay = M @ a.square().mean(1), M @ decay.square().mean(1)
        row[S * d: 2 * S * d] = (M @ a).flatten()
        row[2 * S * d: 2 * S * d + S] = ms_a.sqrt()
        row[2 * S * d + S: 2 * S * d + 2 * S] = ms_decay.sqrt() / (ms_a.sqrt() + ms_decay.sqrt())
        row[2 * S * d + 2 * S: 2 * S * d + 3 * S] = M @ (dw.abs() < half_ulp_bf16(self.w_old)).float().mean(1)
        row[2 * S * d + 3 * S:] = self.hidden

    def commit(self, step: int) -> None:
        """This step's row into the buffer (a device copy; the host learns nothing)."""
        self.buf[len(self.steps)].copy_(self.cur)
        self.steps.append(step)

    def flush(self) -> None:
        if not self.steps:
            return
        vals = self.buf[: len(self.steps)].cpu().numpy()
        self.mm[self.steps[0]: self.steps[-1] + 1] = vals.view(self.dtype).reshape(-1)
        self.steps.clear()

    def sync(self) -> None:
        """Everything logged so far on disk (at a checkpoint)."""
        self.flush()
        self.mm.flush()

    def close(self) -> None:
        self.sync()
        del self.mm


def load(run_dir: Path) -> np.ndarray:
    path = Path(run_dir) / FILE
    if not path.exists():
        raise DucklingError(f"{path}: no forces logged; run `invoke train`")
    return np.load(path, mmap_mode="r")
