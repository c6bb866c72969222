"""One frame of the movie in a single read of its rows: every per-token number and per-set sum the
Record needs, compiled with numba.

The metrics are defined by the numpy functions of lattice, cooling, cloud and coherence, which are
the reference; this module computes the same quantities from the bf16 bit patterns without
materialising a float copy, a displacement array or an ordinal array per metric: one loop over each
row's coordinates does it all, an order of magnitude faster than the reference functions chained
(bench/results/analyze.json has the timings). tests/test_fast.py holds it to the reference: lattice
numbers exactly, float sums to rounding (squares of float displacements are summed in float64
here, in float32 there).

Frames are read as they lie on disk; the token sets are given as one row order `perm` with set j
at perm[bounds[j]:bounds[j + 1]], so a frame is never copied to regroup its rows. Outputs are in
that order: per-row arrays slice by set, and each set's rows come out centred and contiguous (Xc)
for the Gram matrix. The compiled functions are cached beside this file (or in NUMBA_CACHE_DIR).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from duckling.errors import DucklingError

# reassoc lets LLVM vectorise the row sums; contract allows fused multiply-adds. No nnan/ninf: a
# NaN or inf weight still gives NaN/inf as in the reference functions.
_JIT = dict(nogil=True, cache=True, boundscheck=False, error_model="numpy", fastmath={"reassoc", "contract"})
_BLOCK = 16  # rows whose displacements wait in a small buffer before they are added to the unit sums


@numba.njit(**_JIT)
def _add_scaled(D, inv, m, acc):
    """acc[0] + acc[1] += sum_i D_i * inv_i over the first m rows of D, in float64. Rows go in
    pairs into two accumulators: one accumulator would chain every row's adds on the last's."""
    d = D.shape[1]
    i = 0
    while i + 1 < m:
        a, b = inv[i], inv[i + 1]
        for j in range(d):
            acc[0, j] += np.float64(D[i, j]) * a
            acc[1, j] += np.float64(D[i + 1, j]) * b
        i += 2
    if i < m:
        a = inv[i]
        for j in range(d):
            acc[0, j] += np.float64(D[i, j]) * a


@numba.njit(**_JIT)
def _sweep(B, Bp, B0, Bk, rows, speed, cum, l1, linf, l2sq, umax, zc, kept, total, dtotal, unit, unit_k):
    # Rows rows[r] of the frames; outputs at r. One loop over each row's coordinates computes
    # everything; a missing frame is passed as B itself (zero displacement) and the caller discards
    # what came from it, so the loop has no branches.
    d = B.shape[1]
    n = rows.size
    Dx = np.empty((_BLOCK, d), np.float32)  # the last rows' dW_i and window displacements
    Dk = np.empty((_BLOCK, d), np.float32)
    ix = np.zeros(_BLOCK)  # 1 / |dW_i|, 0 for a token that did not move
    ik = np.zeros(_BLOCK)
    ax = np.zeros((2, d))
    ak = np.zeros((2, d))
    n_moving = 0
    n_moving_k = 0
    m = 0
    for r in range(n):
        i = rows[r]
        b, bp, b0, bk = B[i], Bp[i], B0[i], Bk[i]
        dx, dk = Dx[m], Dk[m]
        s2 = 0.0
        c2 = 0.0
        k2 = 0.0
        rm = np.uint32(0)
        a1 = np.int32(0)
        amax = np.int32(0)
        a2 = np.float32(0.0)  # exact below 2**24, as lattice_displacement's float32 sum; beyond, teleporting
        z = np.int32(0)
        kc = np.int32(0)
        for j in range(d):
            ub = np.uint32(b[j])
            vb = np.uint32(bp[j])
            x = np.uint32(ub << 16).view(np.float32)  # bf16 -> float32 is a shift
            pbits = np.uint32(vb << 16)
            total[j] += x
            f = x - np.uint32(np.uint32(b0[j]) << 16).view(np.float32)
            c2 += np.float64(f) * np.float64(f)
            e = x - pbits.view(np.float32)  # exact: bf16 differences
            dx[j] = e
            dtotal[j] += e
            s2 += np.float64(e) * np.float64(e)
            g = x - np.uint32(np.uint32(bk[j]) << 16).view(np.float32)
            dk[j] = g
            k2 += np.float64(g) * np.float64(g)
            # |dw| * 2**(128 - max(e, 1)), the exponent of the previous value turned into a
            # power-of-two scale (lattice.ulp_displacement); the max of non-negative floats is
            # the max of their bit patterns, which vectorises and keeps NaN (the largest).
            ex = max(pbits & np.uint32(0x7F800000), np.uint32(0x00800000))
            q = abs(e) * np.uint32(np.uint32(0x7F800000) - ex).view(np.float32)
            rm = max(rm, np.float32(q).view(np.uint32))
            u = np.int32(ub)
            v = np.int32(vb)
            mu = u & 0x7FFF
            mv = v & 0x7FFF
            same = ((u ^ v) & 0x8000) == 0
            a = abs(mu - mv) if same else mu + mv  # |ord(now) - ord(prev)|, ord = +-magnitude
            a1 += a
            amax = max(amax, a)
            a2 += np.float32(a) * np.float32(a)
            z += np.int32((mu != 0) & (mv != 0) & (not same))
            kc += np.int32(a == 0)
        cum[r] = math.sqrt(c2)
        sp = math.sqrt(s2)
        speed[r] = sp
        umax[r] = np.float64(np.uint32(rm).view(np.float32)) * 64.0
        l1[r] = a1
        linf[r] = amax
        l2sq[r] = a2
        zc[r] = z
        kept[r] = kc
        ix[m] = 0.0
        if sp > 0:  # s2 is 0 only when no coordinate moved: float32 squares cannot underflow float64
            n_moving += 1
            ix[m] = 1.0 / sp
        ik[m] = 0.0
        if k2 > 0:
            n_moving_k += 1
            ik[m] = 1.0 / math.sqrt(k2)
        m += 1
        if m == _BLOCK or r == n - 1:
            _add_scaled(Dx, ix, m, ax)
            _add_scaled(Dk, ik, m, ak)
            m = 0
    for j in range(d):
        unit[j] += ax[0, j] + ax[1, j]
        unit_k[j] += ak[0, j] + ak[1, j]
    return n_moving, n_moving_k


@numba.njit(**_JIT)
def _centre(B, rows, c, Xc, r2):
    d = B.shape[1]
    cf = c.astype(np.float32)
    for r in range(rows.size):
        b = B[rows[r]]
        s = 0.0
        for j in range(d):
            v = np.uint32(np.uint32(b[j]) << 16).view(np.float32) - cf[j]
            Xc[r, j] = v
            s += np.float64(v) * np.float64(v)
        r2[r] = s


@numba.njit(**_JIT)
def _frame(B, Bp, B0, Bk, perm, bounds, speed, cum, l1, linf, l2sq, umax, zc, kept, Xc, r2, total, dtotal, unit,
           unit_k, moving):
    for s in range(bounds.size - 1):
        a, b = bounds[s], bounds[s + 1]
        total[s] = 0.0
        dtotal[s] = 0.0
        unit[s] = 0.0
        unit_k[s] = 0.0
        moving[s] = 0
        if b == a:
            continue
        rows = perm[a:b]
        moving[s, 0], moving[s, 1] = _sweep(B, Bp, B0, Bk, rows, speed[a:b], cum[a:b], l1[a:b], linf[a:b],
                                            l2sq[a:b], umax[a:b], zc[a:b], kept[a:b], total[s], dtotal[s], unit[s],
                                            unit_k[s])
        _centre(B, rows, total[s] / (b - a), Xc[a:b], r2[a:b])


@dataclass
class Sums:
    """One frame's numbers for every token set, rows in the order perm (set j: rows
    bounds[j]:bounds[j + 1]). Per row, against the previous frame (unset where there is none):
    speed = |dW_i| (cooling.speed), L1, Linf, L2 of the ordinal differences
    (lattice.lattice_displacement; L2 as its square, summed in float32 like the reference: exact
    below 2**24, far past any regime boundary), ulp_max = max_j r_ij (lattice.ulp_displacement),
    zero_cross (lattice.zero_crossings), kept (lattice.kept_cells); against frame 0: cum = |w_i(t) - w_i(0)|; Xc = w_i minus
    its set's centroid rounded to float32 (as cloud.radius centres) and r2 = |Xc_i|^2 summed in
    float64. Per set j: total[j] = sum_i w_i, d_total[j] = sum_i dW_i, unit[j] = sum_i u_i over the
    moving[j, 0] tokens with dW_i != 0 (coherence), unit_k[j] and moving[j, 1] the same over the
    window to the frame k back."""
    speed: np.ndarray
    cum: np.ndarray
    L1: np.ndarray
    Linf: np.ndarray
    L2sq: np.ndarray
    ulp_max: np.ndarray
    zero_cross: np.ndarray
    kept: np.ndarray
    Xc: np.ndarray
    r2: np.ndarray
    total: np.ndarray
    d_total: np.ndarray
    unit: np.ndarray
    unit_k: np.ndarray
    moving: np.ndarray

    @classmethod
    def empty(cls, n: int, d: int, n_sets: int) -> Sums:
        f8, i8 = lambda: np.empty(n), lambda: np.empty(n, np.int64)
        sums = lambda: np.zeros((n_sets, d))
        return cls(speed=f8(), cum=f8(), L1=i8(), Linf=i8(), L2sq=f8(), ulp_max=f8(), zero_cross=i8(), kept=i8(),
                   Xc=np.empty((n, d), np.float32), r2=f8(), total=sums(), d_total=sums(), unit=sums(),
                   unit_k=sums(), moving=np.zeros((n_sets, 2), np.int64))


def _frame_bits(a, name: str, shape=None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint16 or a.ndim != 2 or (shape is not None and a.shape != shape):
        raise DucklingError(f"{name}: need a uint16 array of bf16 bits shaped {shape or '(n, d)'}, "
                            f"got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def sums(now, prev=None, first=None, back=None, perm=None, bounds=None, out: Sums | None = None) -> Sums:
    """Sweep a frame's rows once: `now`, `prev` (previous frame or None), `first` (frame 0; None
    means now) and `back` (the frame k back, or None), each (rows, d) uint16 bf16 bits. perm: the
    rows to read, set after set (default: all, in order); bounds: where each set starts and ends in
    perm (default: one set). out: Sums of the same shape to overwrite (a worker reuses one,
    frame after frame). Where prev is None, speed, L2sq and ulp_max are NaN; where back is None,
    moving[:, 1] is 0."""
    B = _frame_bits(now, "now")
    rows, d = B.shape
    perm = np.arange(rows) if perm is None else np.ascontiguousarray(perm, dtype=np.int64)
    n = perm.size
    bounds = np.array([0, n]) if bounds is None else np.asarray(bounds, dtype=np.int64)
    if perm.ndim != 1 or (n and (perm.min() < 0 or perm.max() >= rows)):
        raise DucklingError(f"frame: perm must list row ids in 0..{rows - 1}")
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != n or np.any(np.diff(bounds) < 0):
        raise DucklingError(f"frame: set bounds must rise from 0 to {n}, got {bounds.tolist()}")
    Bp = B if prev is None else _frame_bits(prev, "prev", B.shape)
    B0 = B if first is None else _frame_bits(first, "first", B.shape)
    Bk = B if back is None else _frame_bits(back, "back", B.shape)
    S = bounds.size - 1
    if out is None or out.Xc.shape != (n, d) or out.total.shape != (S, d):
        out = Sums.empty(n, d, S)
    o = out
    _frame(B, Bp, B0, Bk, perm, bounds, o.speed, o.cum, o.L1, o.Linf, o.L2sq, o.ulp_max, o.zero_cross, o.kept, o.Xc,
           o.r2, o.total, o.d_total, o.unit, o.unit_k, o.moving)
    if prev is None:  # the sweep compared the frame with itself: nothing moved, nothing to report
        o.speed[:], o.L2sq[:], o.ulp_max[:] = np.nan, np.nan, np.nan
    if back is None:
        o.moving[:, 1] = 0
    return out
