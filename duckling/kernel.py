"""One token set of one frame in a single read of its rows: every per-token number and per-set sum
the Record needs, compiled with numba.

The metrics are defined by the numpy functions of lattice, cooling, cloud and coherence, which are
the reference; this module computes the same quantities from the bf16 bit patterns without
materialising a float copy, a displacement array or an ordinal array per metric: about 4 ms for a
10,000 x 128 frame on one core here, against about 20 ms for the reference functions chained.
tests/test_kernel.py holds it to the reference: lattice numbers exactly, float sums to rounding
(squares of float displacements are summed in float64 here, in float32 there).

The compiled functions release the GIL, so the analyze stage computes frames side by side in
threads; they are compiled on first use and cached beside this file (or in NUMBA_CACHE_DIR).
"""
from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import numba
import numpy as np
from numba.extending import get_cython_function_address

from duckling.errors import DucklingError

# reassoc lets LLVM vectorise the row sums; contract allows fused multiply-adds. No nnan/ninf: a
# NaN or inf weight still gives NaN/inf as in the reference functions.
_JIT = dict(nogil=True, cache=True, boundscheck=False, error_model="numpy", fastmath={"reassoc", "contract"})


@numba.njit(**_JIT)
def _sweep(B, Bp, B0, Bk, has_prev, has_k, speed, cum, l1, linf, l2sq, umax, zc, total, dtotal, unit, unit_k):
    n, d = B.shape
    n_moving = 0
    n_moving_k = 0
    dx = np.empty(d, np.float32)
    for i in range(n):
        b, bp, b0 = B[i], Bp[i], B0[i]
        s2 = 0.0
        c2 = 0.0
        rm = np.uint32(0)
        for j in range(d):
            x = np.uint32(np.uint32(b[j]) << 16).view(np.float32)  # bf16 -> float32 is a shift
            total[j] += x
            f = x - np.uint32(np.uint32(b0[j]) << 16).view(np.float32)
            c2 += np.float64(f) * np.float64(f)
        if has_prev:
            for j in range(d):
                pbits = np.uint32(np.uint32(bp[j]) << 16)
                e = np.uint32(np.uint32(b[j]) << 16).view(np.float32) - pbits.view(np.float32)
                dx[j] = e
                dtotal[j] += e
                s2 += np.float64(e) * np.float64(e)
                # |dw| * 2**(128 - max(e, 1)), the exponent of the previous value turned into a
                # power-of-two scale (lattice.ulp_displacement); the max of non-negative floats is
                # the max of their bit patterns, which vectorises and keeps NaN (the largest).
                ex = max(pbits & np.uint32(0x7F800000), np.uint32(0x00800000))
                r = abs(e) * np.uint32(np.uint32(0x7F800000) - ex).view(np.float32)
                rm = max(rm, np.float32(r).view(np.uint32))
        cum[i] = math.sqrt(c2)
        if not has_prev:
            continue
        sp = math.sqrt(s2)
        speed[i] = sp
        umax[i] = np.float64(np.uint32(rm).view(np.float32)) * 64.0
        a1 = np.int32(0)
        amax = np.int32(0)
        a2 = np.float32(0.0)  # exact below 2**24, as lattice_displacement's float32 sum; beyond, teleporting
        z = np.int32(0)
        for j in range(d):
            u = np.int32(b[j])
            v = np.int32(bp[j])
            mu = u & 0x7FFF
            mv = v & 0x7FFF
            same = ((u ^ v) & 0x8000) == 0
            a = abs(mu - mv) if same else mu + mv  # |ord(now) - ord(prev)|, ord = +-magnitude
            a1 += a
            amax = max(amax, a)
            a2 += np.float32(a) * np.float32(a)
            z += np.int32((mu != 0) & (mv != 0) & (not same))
        l1[i] = a1
        linf[i] = amax
        l2sq[i] = a2
        zc[i] = z
        if sp > 0:
            n_moving += 1
            inv = 1.0 / sp
            for j in range(d):
                unit[j] += np.float64(dx[j]) * inv
        if has_k:
            bk = Bk[i]
            k2 = 0.0
            for j in range(d):
                e = np.uint32(np.uint32(b[j]) << 16).view(np.float32) - \
                    np.uint32(np.uint32(bk[j]) << 16).view(np.float32)
                dx[j] = e
                k2 += np.float64(e) * np.float64(e)
            if k2 > 0:
                n_moving_k += 1
                inv = 1.0 / math.sqrt(k2)
                for j in range(d):
                    unit_k[j] += np.float64(dx[j]) * inv
    return n_moving, n_moving_k


@numba.njit(**_JIT)
def _centre(B, c, Xc, r2):
    n, d = B.shape
    cf = c.astype(np.float32)
    for i in range(n):
        b = B[i]
        s = 0.0
        for j in range(d):
            v = np.uint32(np.uint32(b[j]) << 16).view(np.float32) - cf[j]
            Xc[i, j] = v
            s += np.float64(v) * np.float64(v)
        r2[i] = s


# LAPACK's dsyevr through scipy's Cython export: the f2py wrapper (scipy.linalg.lapack) holds the
# GIL for the whole call, which serialised the frame threads; this call releases it. Not cached
# (numba cannot cache a function that holds a process-specific address): compiled on first use.
_dsyevr = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 21)(
    get_cython_function_address("scipy.linalg.cython_lapack", "dsyevr"))


@numba.njit(nogil=True)
def _top_pair(G):
    d = G.shape[0]
    A = G.copy()  # overwritten; symmetric, so C order reads as Fortran order
    chars = np.array([ord("V"), ord("I"), ord("L")], np.uint8)
    ints = np.array([d, d, d, 0, d, 26 * d, 10 * d, 0], np.int32)  # n lda=n il iu m ldz lwork liwork info
    reals = np.zeros(3)  # vl vu abstol (0: LAPACK's default tolerance)
    w = np.zeros(d)
    z = np.zeros(d)
    isuppz = np.zeros(2, np.int32)
    work = np.zeros(26 * d)
    iwork = np.zeros(10 * d, np.int32)
    info = np.zeros(1, np.int32)
    _dsyevr(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, ints[0:].ctypes, A.ctypes, ints[1:].ctypes,
            reals[0:].ctypes, reals[1:].ctypes, ints[2:].ctypes, ints[2:].ctypes, reals[2:].ctypes, ints[3:].ctypes,
            w.ctypes, z.ctypes, ints[4:].ctypes, isuppz.ctypes, work.ctypes, ints[5:].ctypes, iwork.ctypes,
            ints[6:].ctypes, info.ctypes)
    return w[0], z, info[0], ints[3]


def top_eigenpair(G) -> tuple[float, np.ndarray]:
    """(l_max, unit eigenvector) of a symmetric float64 matrix from LAPACK dsyevr (range 'I', il =
    iu = d), releasing the GIL."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    d = G.shape[0]
    if G.ndim != 2 or G.shape != (d, d) or d == 0:
        raise DucklingError(f"top_eigenpair: need a square matrix, got {G.shape}")
    lam, v, info, m = _top_pair(G)
    if info != 0 or m != 1:
        raise DucklingError(f"top_eigenpair: LAPACK dsyevr failed (info {info}) on a {d} x {d} matrix")
    return float(lam), v


@dataclass
class Rows:
    """One set's numbers at one frame (n rows of width d). Per row, against the previous frame
    (NaN / 0 where there is none): speed = |dW_i| (cooling.speed), L1, Linf, L2 of the ordinal
    differences (lattice.lattice_displacement; L2 as its square, summed in float32 like the
    reference: exact below 2**24, far past any regime boundary), ulp_max = max_j r_ij
    (lattice.ulp_displacement), zero_cross (lattice.zero_crossings); against frame 0:
    cum = |w_i(t) - w_i(0)|. Per set: total = sum_i w_i, d_total = sum_i dW_i, unit = sum_i u_i over
    the n_moving tokens with dW_i != 0 (coherence), unit_k and n_moving_k the same over the window
    to the frame k back."""
    speed: np.ndarray
    cum: np.ndarray
    L1: np.ndarray
    Linf: np.ndarray
    L2sq: np.ndarray
    ulp_max: np.ndarray
    zero_cross: np.ndarray
    total: np.ndarray
    d_total: np.ndarray
    unit: np.ndarray
    n_moving: int
    unit_k: np.ndarray
    n_moving_k: int


def _frame_bits(a, name: str, shape=None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint16 or a.ndim != 2 or (shape is not None and a.shape != shape):
        raise DucklingError(f"{name}: need a uint16 array of bf16 bits shaped {shape or '(n, d)'}, "
                            f"got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def rows(now, prev=None, first=None, back=None) -> Rows:
    """Sweep one set's rows once: `now`, `prev` (previous frame or None), `first` (frame 0; None
    means now) and `back` (the frame k back, or None), each (n, d) uint16 bf16 bits."""
    B = _frame_bits(now, "now")
    n, d = B.shape
    Bp = B if prev is None else _frame_bits(prev, "prev", B.shape)
    B0 = B if first is None else _frame_bits(first, "first", B.shape)
    Bk = B if back is None else _frame_bits(back, "back", B.shape)
    nan = lambda: np.full(n, np.nan)
    r = Rows(speed=nan(), cum=np.empty(n), L1=np.zeros(n, np.int64), Linf=np.zeros(n, np.int64), L2sq=nan(),
             ulp_max=nan(), zero_cross=np.zeros(n, np.int64), total=np.zeros(d), d_total=np.zeros(d),
             unit=np.zeros(d), n_moving=0, unit_k=np.zeros(d), n_moving_k=0)
    r.n_moving, r.n_moving_k = _sweep(B, Bp, B0, Bk, prev is not None, back is not None, r.speed, r.cum, r.L1,
                                      r.Linf, r.L2sq, r.ulp_max, r.zero_cross, r.total, r.d_total, r.unit,
                                      r.unit_k)
    return r


def centred(now, c, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(Xc, r2): the rows' float32 values minus c rounded to float32 (as cloud.radius centres), and
    |Xc_i|^2 per row summed in float64. out: a float32 scratch array of at least n * d elements to
    write Xc into (saves faulting in fresh pages for every frame)."""
    B = _frame_bits(now, "now")
    if out is None or out.dtype != np.float32 or out.size < B.size:
        Xc = np.empty(B.shape, np.float32)
    else:
        Xc = out.reshape(-1)[: B.size].reshape(B.shape)
    r2 = np.empty(B.shape[0])
    _centre(B, np.ascontiguousarray(c, dtype=np.float64), Xc, r2)
    return Xc, r2
