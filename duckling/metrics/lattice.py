"""The bf16 lattice: cells crossed per frame, movement regimes, local ULP, and the fimbulwinter verdict.

A frame row is a vector of bf16 bit patterns (uint16). The ordinal of a pattern b is

    ord(b) = b                if the sign bit is clear
    ord(b) = -(b & 0x7FFF)    if it is set            (+0 and -0 are both 0, the same cell)

so ordinals count bf16 cells in value order, and ord(now) - ord(prev) is the number of cells a
coordinate crossed. The lattice is logarithmic: a coordinate that crosses zero steps through very
many cells (0.5 -> -0.5 is 2 * 16128 = 32256 cells), which is why displacement is also given in
units of the local ULP.
"""
from __future__ import annotations

import math

import numpy as np

from duckling.errors import DucklingError

REGIMES = ("frozen", "face_adjacent", "neighbour", "multi_cell", "teleporting")
FROZEN, FACE_ADJACENT, NEIGHBOUR, MULTI_CELL, TELEPORTING = range(5)

VERDICTS = ("classic fimbulwinter", "cold, not frozen", "still moving")
PRECISIONS = ("fp32", "amp-bf16", "pure-bf16")
FREEZE_LEVEL = 0.99

# Local ULP by biased exponent e (bits 7..14): 2**(max(e, 1) - 134); NaN for e = 255 (inf/NaN).
_ULP_TABLE32 = np.array([math.ldexp(1.0, max(e, 1) - 134) for e in range(255)] + [math.nan],
                        dtype=np.float32)


def _bits(a, name: str = "bits") -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint16:
        raise DucklingError(f"{name}: bf16 bit patterns must be uint16, got {a.dtype}")
    return a


def _pair(bits_prev, bits_now) -> tuple[np.ndarray, np.ndarray]:
    p, n = _bits(bits_prev, "bits_prev"), _bits(bits_now, "bits_now")
    if p.shape != n.shape or p.ndim != 2:
        raise DucklingError(f"frames must be two (n, d) arrays of one shape, got {p.shape} and {n.shape}")
    return p, n


def _ordinals16(bits: np.ndarray) -> np.ndarray:
    """ord(b) in int16 (range -32767..32767): s ^ (m & 0x7FFF) - m with s = b as int16, m = s >> 15."""
    s = bits.view(np.int16)
    m = s >> 15
    out = m & np.int16(0x7FFF)
    out ^= s
    out -= m
    return out


def to_float32(bits) -> np.ndarray:
    """The float32 values of bf16 bit patterns (exact): the pattern shifted into the high half."""
    out = _bits(bits).astype(np.uint32)
    out <<= 16
    return out.view(np.float32)


def ordinals(bits) -> np.ndarray:
    """ord(b) = b if the sign bit is clear else -(b & 0x7FFF); +0 and -0 both 0. int32, same shape.

    Over all finite patterns, sorted by value, ordinals are non-decreasing and equal only for +0/-0.
    Inf and NaN patterns sort beyond the largest finite magnitude.
    """
    return _ordinals16(_bits(bits)).astype(np.int32)


def lattice_displacement(bits_prev, bits_now) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per token (row), the norms of dW'_i = ord(now) - ord(prev), the integer cells crossed per coordinate.

    Returns (L1, Linf, L2): L1 = sum_j |dW'_ij| (int32), Linf = max_j |dW'_ij| (int32),
    L2 = sqrt(sum_j dW'_ij^2) (float64), each of shape (n,).
    The cell counts are held in float32, which is exact (|dW'| <= 65534 < 2**24); L1 and L2^2 are
    exact integers whenever they are below 2**24, so every regime boundary is decided exactly.
    """
    p, n = _pair(bits_prev, bits_now)
    a = np.subtract(_ordinals16(n), _ordinals16(p), dtype=np.float32)
    np.abs(a, out=a)
    l1 = (a @ np.ones(a.shape[1], dtype=np.float32)).astype(np.int32)
    linf = (a.max(axis=1) if a.shape[1] else np.zeros(a.shape[0], np.float32)).astype(np.int32)
    l2 = np.sqrt(np.einsum("ij,ij->i", a, a).astype(np.float64))
    return l1, linf, l2


def classify(L1, Linf, L2, d: int) -> np.ndarray:
    """Regime index into REGIMES per token (int8), exclusive, checked in this order:

    frozen L1 = 0; face_adjacent L1 = 1; neighbour Linf = 1 and L1 >= 2;
    multi_cell Linf >= 2 and L2 <= sqrt(d); teleporting L2 > sqrt(d).
    """
    L1, Linf, L2 = np.asarray(L1), np.asarray(Linf), np.asarray(L2)
    code = np.full(np.broadcast_shapes(L1.shape, Linf.shape, L2.shape), TELEPORTING, dtype=np.int8)
    # later assignments win, so they go in reverse order of the rules (L1 = 1 implies Linf = 1)
    code[L2 <= math.sqrt(d)] = MULTI_CELL
    code[Linf == 1] = NEIGHBOUR
    code[L1 == 1] = FACE_ADJACENT
    code[L1 == 0] = FROZEN
    return code


def regime_fractions(codes) -> np.ndarray:
    """Fraction of tokens in each regime, float64 (5,), in REGIMES order; NaN for an empty set."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return np.full(len(REGIMES), np.nan)
    return np.bincount(codes.ravel(), minlength=len(REGIMES))[: len(REGIMES)] / codes.size


def ulp(bits) -> np.ndarray:
    """Local ULP of each bf16 value, float32, same shape: the spacing of the bf16 lattice at |w|,

        ulp(w) = 2**(max(e, 1) - 127 - 7)   with e the biased exponent (bits 7..14),

    i.e. the distance from |w| to the next bf16 value of larger magnitude. Zero and subnormals
    (e = 0) get the subnormal spacing 2**-133, the distance from 0 to the smallest nonzero bf16.
    At a power of two the cell below is half as wide; the ULP is that of the upward cell.
    Inf and NaN patterns (e = 255) give NaN.
    """
    b = _bits(bits)
    return _ULP_TABLE32[(b >> 7) & 0xFF]


def predicted_frozen(bits, update) -> np.ndarray:
    """Whether an update keeps a coordinate's bf16 value: |update| < ulp(w) / 2, with ulp as above
    (round to nearest lands back on w). At a power of two a downward update of more than a quarter
    of the upward ULP leaves the cell below, which this rule does not see: a prediction, not a count."""
    return np.abs(np.asarray(update, dtype=np.float32)) < ulp(bits) / 2


def ulp_displacement(bits_prev, bits_now) -> tuple[np.ndarray, np.ndarray]:
    """Per token, displacement in units of the local ULP at the previous value:

        r_ij = |w_ij(now) - w_ij(prev)| / ulp(w_ij(prev))

    Returns (max_j r_ij, mean_j r_ij), each float64 of shape (n,). A frozen token has max 0;
    r ~ 1 is one cell; a zero crossing gives a large r because ulp(w_prev) is small. A non-finite
    previous value gives NaN. Computed in float32 as (|dw| * 2**(128 - max(e, 1))) * 2**6, where the
    first factor is built from the exponent bits (a power-of-two scaling, exact); r >= 2**134 (only
    a coordinate leaving |w| < 2**-125 by 2 or more) reads inf.
    """
    p, n = _pair(bits_prev, bits_now)
    prev = to_float32(p)
    dw = to_float32(n)
    dw -= prev
    np.abs(dw, out=dw)
    scale = prev.view(np.uint32)  # exponent bits e << 23 -> bits of 2**(128 - max(e, 1)): (255 - e') << 23
    scale &= np.uint32(0x7F800000)
    np.maximum(scale, np.uint32(0x00800000), out=scale)
    np.subtract(np.uint32(0x7F800000), scale, out=scale)
    dw *= scale.view(np.float32)
    d = dw.shape[1]
    if d == 0:
        return np.zeros(dw.shape[0]), np.zeros(dw.shape[0])
    rmax = dw.max(axis=1).astype(np.float64) * 64.0
    rmean = (dw @ np.full(d, 1.0 / d, dtype=np.float32)).astype(np.float64) * 64.0
    return rmax, rmean


def zero_crossings(bits_prev, bits_now) -> np.ndarray:
    """Per token, the number of coordinates whose sign changed between two nonzero values (int64, (n,)).

    Moving onto or off +-0 is not a crossing, and +0 <-> -0 is not a crossing (same cell).
    """
    p, n = _pair(bits_prev, bits_now)
    crossed = np.minimum(p << 1, n << 1) != 0  # both magnitudes nonzero
    crossed &= (p ^ n) >= 0x8000  # sign bits differ
    return _count_rows(crossed)


def kept_cells(bits_prev, bits_now) -> np.ndarray:
    """Per token, the number of coordinates that kept their bf16 cell (int64, (n,)):

        K_i = sum_j [ord(now_ij) = ord(prev_ij)],

    ([.] is 1 when it holds, else 0), +0 and -0 being one cell. A set's kept-cell share is sum_i K_i / (n d): with fp32 masters the
    coordinates whose update stayed inside their cell, in pure-bf16 those whose update was lost.
    """
    p, n = _pair(bits_prev, bits_now)
    return _count_rows(_ordinals16(n) == _ordinals16(p))


def _count_rows(mask: np.ndarray) -> np.ndarray:
    """True entries per row of a C-contiguous bool (n, d) array, int64 (n,)."""
    d = mask.shape[1]
    if d % 8 or d > 255 or not mask.flags.c_contiguous:
        return np.count_nonzero(mask, axis=1).astype(np.int64)
    # Bytes are 0/1: summing the row's 64-bit words adds byte lanes without carries (each lane <= d/8),
    # and multiplying by 0x0101...01 gathers the lane sums (<= d <= 255) into the top byte.
    words = mask.view(np.uint64).sum(axis=1, dtype=np.uint64)
    return ((words * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def _onset(steps: np.ndarray, frac: np.ndarray, level: float):
    """First step from which frac >= level holds at every later frame through the end, else None."""
    bad = np.flatnonzero(~(frac >= level))
    if bad.size == 0:
        return steps[0].item()
    if bad[-1] == frac.size - 1:
        return None
    return steps[bad[-1] + 1].item()


def meaning(precision: str) -> str:
    """What an unchanged bf16 frame (L1 = 0) means under a precision mode."""
    if precision == "pure-bf16":
        return ("Weights are stored in bf16 (pure-bf16): an unchanged frame means the update rounded away "
                "entirely (under half a ULP), so a frozen token truly did not move.")
    if precision in ("fp32", "amp-bf16"):
        return (f"Weights are kept in fp32 ({precision}): an unchanged bf16 frame means the token moved "
                "less than one bf16 cell, not that it froze; only pure-bf16 weights can truly freeze.")
    raise DucklingError(f"precision={precision}: choose one of {', '.join(PRECISIONS)}")


def fimbulwinter_verdict(steps, frozen_frac, cold_frac, precision: str) -> dict:
    """The fimbulwinter verdict from a regime-fraction series (one value per frame, in step order).

    frozen_frac: fraction of tokens frozen (L1 = 0) per frame; cold_frac: frozen + face_adjacent +
    neighbour per frame. The window is the last ceil(N / 10) frames of the N given (at least one,
    integer arithmetic: N = 30 gives 3). Then:
      "classic fimbulwinter"  frozen_frac >= 0.99 at every frame of the window;
      "cold, not frozen"      cold_frac >= 0.99 at every frame of the window, frozen_frac does not;
      "still moving"          otherwise.
    onset_50 / onset_99: the first step from which frozen_frac >= 0.5 / >= 0.99 at every frame through
    the last (None if the last frame is below). ">=" matches the verdict's threshold.
    A NaN fraction (empty token set) fails every test.

    Returns dict(verdict, precision, onset_50, onset_99, window_frames, window_start_step,
    min_frozen, min_cold (minima over the window), meaning).
    """
    steps = np.asarray(steps)
    frozen = np.asarray(frozen_frac, dtype=np.float64)
    cold = np.asarray(cold_frac, dtype=np.float64)
    n = steps.size
    if n == 0 or frozen.shape != (n,) or cold.shape != (n,):
        raise DucklingError(f"fimbulwinter_verdict needs one frozen and one cold fraction per step, "
                            f"got {n} steps, {frozen.shape} and {cold.shape}")
    text = meaning(precision)
    k = max(1, -(-n // 10))
    wf, wc = frozen[-k:], cold[-k:]
    if np.all(wf >= FREEZE_LEVEL):
        verdict = VERDICTS[0]
    elif np.all(wc >= FREEZE_LEVEL):
        verdict = VERDICTS[1]
    else:
        verdict = VERDICTS[2]
    return {
        "verdict": verdict,
        "precision": precision,
        "onset_50": _onset(steps, frozen, 0.5),
        "onset_99": _onset(steps, frozen, FREEZE_LEVEL),
        "window_frames": k,
        "window_start_step": steps[-k].item(),
        "min_frozen": float(np.min(wf)),
        "min_cold": float(np.min(wc)),
        "meaning": text,
    }
