"""Known answers for the bf16 lattice: ordinals, regimes, ULP, zero crossings, fimbulwinter verdict."""
import math

import numpy as np
import pytest

from duckling.errors import DucklingError
from duckling.metrics import lattice as L

D = 128
SQRT_D = math.sqrt(D)


def bits_of(x) -> np.ndarray:
    """bf16 bit patterns of values that are exactly bf16."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32)
    assert not np.any(u & 0xFFFF), "value is not exactly bf16"
    return (u >> 16).astype(np.uint16)


def from_ordinals(o) -> np.ndarray:
    o = np.asarray(o, dtype=np.int64)
    return np.where(o >= 0, o, 0x8000 | -o).astype(np.uint16)


def moved(prev_bits, offsets) -> np.ndarray:
    """The frame reached by moving each coordinate by an integer number of cells."""
    return from_ordinals(L.ordinals(prev_bits).astype(np.int64) + offsets)


@pytest.fixture
def prev():
    """Positive values in [0.5, 1) far from zero, so small cell offsets never cross a sign."""
    rng = np.random.default_rng(1)
    return bits_of(np.floor(rng.uniform(0.55, 0.95, (12, D)) * 256) / 256)


# --- ordinals ---------------------------------------------------------------------------------

def test_ordinals_known_values():
    b = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x3F80, 0xBF80, 0x7F7F, 0xFF7F], dtype=np.uint16)
    assert L.ordinals(b).tolist() == [0, 0, 1, -1, 16256, -16256, 32639, -32639]
    assert L.ordinals(b).dtype == np.int32


def test_ordinals_monotone_over_all_finite_patterns():
    b = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    v = L.to_float32(b)
    finite = np.isfinite(v)
    assert finite.sum() == 65536 - 256  # all but the 256 patterns with exponent 255 (inf, NaN)
    order = np.argsort(v[finite], kind="stable")
    o = L.ordinals(b[finite])[order]
    step = np.diff(o)
    assert step.min() >= 0  # non-decreasing in value
    assert np.all(step <= 1)  # consecutive bf16 values are adjacent cells
    ties = np.flatnonzero(step == 0)
    assert len(ties) == 1  # only +0 / -0
    pair = set(b[finite][order][ties[0]:ties[0] + 2].tolist())
    assert pair == {0x0000, 0x8000}


def test_to_float32_exact():
    b = bits_of([1.0, -2.5, 0.0078125, 0.0])
    assert L.to_float32(b).tolist() == [1.0, -2.5, 0.0078125, 0.0]


def test_rejects_non_uint16():
    with pytest.raises(DucklingError):
        L.ordinals(np.zeros(3, dtype=np.float32))
    with pytest.raises(DucklingError):
        L.lattice_displacement(np.zeros((2, 3), np.uint16), np.zeros((3, 3), np.uint16))


# --- lattice displacement and regimes ---------------------------------------------------------

def _row(*pairs):
    off = np.zeros(D, dtype=np.int64)
    for idx, val in pairs:
        off[idx] = val
    return off


def test_frames_in_each_regime(prev):
    rows = [
        (_row(), (0, 0, 0.0), "frozen"),
        (_row((5, 1)), (1, 1, 1.0), "face_adjacent"),
        (_row((7, -1)), (1, 1, 1.0), "face_adjacent"),
        (_row((0, 1), (1, -1)), (2, 1, math.sqrt(2)), "neighbour"),
        (np.where(np.arange(D) % 2, 1, -1), (D, 1, SQRT_D), "neighbour"),  # Linf = 1 although L2 = sqrt(d)
        (_row((3, 2)), (2, 2, 2.0), "multi_cell"),
        (_row((3, 2), (4, -1)), (3, 2, math.sqrt(5)), "multi_cell"),
        (np.where(np.arange(D) < 32, 2, 0), (64, 2, SQRT_D), "multi_cell"),  # L2 exactly sqrt(d)
        (np.where(np.arange(D) < 32, 2, 0) + _row((100, 1)), (65, 2, math.sqrt(129)), "teleporting"),
        (_row((9, 11)), (11, 11, 11.0), "multi_cell"),
        (_row((9, -12)), (12, 12, 12.0), "teleporting"),
        (_row((0, 300), (1, -300)), (600, 300, math.sqrt(2) * 300), "teleporting"),
    ]
    offsets = np.stack([r[0] for r in rows])
    now = moved(prev, offsets)
    l1, linf, l2 = L.lattice_displacement(prev, now)
    assert l1.shape == linf.shape == l2.shape == (len(rows),)
    assert l1.tolist() == [r[1][0] for r in rows]
    assert linf.tolist() == [r[1][1] for r in rows]
    np.testing.assert_allclose(l2, [r[1][2] for r in rows], rtol=1e-15)
    codes = L.classify(l1, linf, l2, D)
    assert codes.dtype == np.int8
    assert [L.REGIMES[c] for c in codes] == [r[2] for r in rows]


def test_sqrt_d_boundary_is_exact():
    l2 = np.sqrt(np.array([128.0, 129.0]))
    codes = L.classify(np.array([64, 65]), np.array([2, 2]), l2, 128)
    assert [L.REGIMES[c] for c in codes] == ["multi_cell", "teleporting"]


def test_classify_checks_in_order():
    # L1 = 0 wins whatever the other norms say; L1 = 1 wins over Linf = 1.
    codes = L.classify(np.array([0, 1, 2, 5, 40]), np.array([0, 1, 1, 2, 20]),
                       np.array([0.0, 1.0, 1.4, 3.0, 28.0]), 128)
    assert codes.tolist() == [L.FROZEN, L.FACE_ADJACENT, L.NEIGHBOUR, L.MULTI_CELL, L.TELEPORTING]


def test_regime_fractions():
    codes = np.array([0, 0, 1, 2, 2, 2, 4, 4, 4, 4], dtype=np.int8)
    np.testing.assert_array_equal(L.regime_fractions(codes), [0.2, 0.1, 0.3, 0.0, 0.4])
    assert np.isnan(L.regime_fractions(np.array([], dtype=np.int8))).all()


def test_plus_and_minus_zero_are_one_cell():
    prev = bits_of(np.array([[0.0, -0.0, 0.0, 1.0]]))
    now = bits_of(np.array([[-0.0, 0.0, 0.0, 1.0]]))
    l1, linf, l2 = L.lattice_displacement(prev, now)
    assert (l1[0], linf[0], l2[0]) == (0, 0, 0.0)
    assert L.zero_crossings(prev, now).tolist() == [0]
    assert L.classify(l1, linf, l2, 4).tolist() == [L.FROZEN]


def test_zero_crossing_steps_through_many_cells():
    prev = bits_of(np.array([[0.5, 1.0, 0.0, -0.25, 3.0]]))
    now = bits_of(np.array([[-0.5, 0.0, -1.0, 0.25, 3.0]]))
    l1, linf, _ = L.lattice_displacement(prev, now)
    cells = [2 * 0x3F00, 0x3F80, 0x3F80, 2 * 0x3E80, 0]
    assert linf[0] == max(cells) and l1[0] == sum(cells)
    # 0.5 -> -0.5 and -0.25 -> 0.25 cross; 1 -> 0 and 0 -> -1 only touch zero.
    assert L.zero_crossings(prev, now).tolist() == [2]


def test_smallest_subnormals_around_zero():
    prev = np.array([[0x0000, 0x8001, 0x0001]], dtype=np.uint16)
    now = np.array([[0x0001, 0x0001, 0x8000]], dtype=np.uint16)
    l1, linf, _ = L.lattice_displacement(prev, now)
    assert (l1[0], linf[0]) == (1 + 2 + 1, 2)
    assert L.zero_crossings(prev, now).tolist() == [1]


def test_zero_crossings_count_per_token():
    rng = np.random.default_rng(3)
    v = rng.uniform(0.1, 1.0, (50, D)).astype(np.float32)
    v = bits_of(np.floor(v * 128) / 128)
    flips = rng.random((50, D)) < 0.1
    now = np.where(flips, v ^ 0x8000, v).astype(np.uint16)
    to_zero = rng.random((50, D)) < 0.05
    now = np.where(to_zero & ~flips, 0x8000, now).astype(np.uint16)  # -0: not a crossing
    np.testing.assert_array_equal(L.zero_crossings(v, now), flips.sum(axis=1))


def test_zero_crossings_odd_width_falls_back():
    prev = bits_of(np.array([[1.0, -1.0, 2.0]]))
    now = bits_of(np.array([[-1.0, 1.0, 2.0]]))
    assert L.zero_crossings(prev, now).tolist() == [2]


# --- ULP ----------------------------------------------------------------------------------------

def test_ulp_known_values():
    b = np.array([0x3F80, 0x3FC0, 0xC000, 0x0000, 0x8000, 0x0001, 0x0080, 0x7F80, 0x7FC0], dtype=np.uint16)
    u = L.ulp(b)
    assert u.dtype == np.float32
    expect = [2.0 ** -7, 2.0 ** -7, 2.0 ** -6, 2.0 ** -133, 2.0 ** -133, 2.0 ** -133, 2.0 ** -133]
    assert u[:7].tolist() == expect
    assert np.isnan(u[7:]).all()


def test_ulp_is_the_gap_to_the_next_larger_magnitude():
    b = np.arange(0, 0x7F7F, dtype=np.uint16)  # every finite non-negative pattern but the largest
    gap = L.to_float32(b + 1).astype(np.float64) - L.to_float32(b).astype(np.float64)
    np.testing.assert_array_equal(L.ulp(b), gap)
    np.testing.assert_array_equal(L.ulp(b | 0x8000), gap)


def test_ulp_displacement_known():
    prev = bits_of(np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]]))
    now = bits_of(np.array([[1.0 + 3 * 2.0 ** -7, 1.0 - 2.0 ** -8, 1.0, 1.0],
                            [2.0 ** -131, 1.0, 2.0, -2.0]]))
    rmax, rmean = L.ulp_displacement(prev, now)
    assert rmax.dtype == np.float64 and rmax.shape == (2,)
    assert rmax[0] == 3.0 and rmean[0] == (3.0 + 0.5) / 4
    # 0 -> 2**-131 is 4 subnormal cells; 0 -> 1 is 2**133 ulps; 2 -> -2 is 4 / 2**-6 = 256.
    assert rmax[1] == 2.0 ** 133
    assert rmean[1] == pytest.approx((4 + 2.0 ** 133 + 0 + 256) / 4, rel=1e-6)


def round_to_bf16(x) -> np.ndarray:
    """Round-to-nearest-even float32 -> bf16 bit patterns (finite inputs)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def test_round_to_bf16_helper():
    x = np.array([1.0, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -0.1, 0.0], dtype=np.float32)
    assert round_to_bf16(x).tolist() == [0x3F80, 0x3F80, 0x3F82, 0xBDCD, 0x0000]


def test_ulp_displacement_matches_brute_force():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((300, D)).astype(np.float32) * 0.02
    w[:, :4] = 0.0
    w2 = w + rng.standard_normal((300, D)).astype(np.float32) * 3e-4
    p, n = round_to_bf16(w), round_to_bf16(w2)
    r = np.abs(L.to_float32(n).astype(np.float64) - L.to_float32(p)) / L.ulp(p).astype(np.float64)
    rmax, rmean = L.ulp_displacement(p, n)
    np.testing.assert_allclose(rmax, r.max(axis=1), rtol=1e-7)
    np.testing.assert_allclose(rmean, r.mean(axis=1), rtol=1e-5)


# --- fimbulwinter -------------------------------------------------------------------------------

def test_freezes_at_a_known_step():
    steps = np.arange(40) * 10
    frozen = np.array([0.0] * 10 + [0.6] * 5 + [0.4] + [0.6] * 4 + [0.995] * 20)
    cold = np.maximum(frozen, 0.5)
    v = L.fimbulwinter_verdict(steps, frozen, cold, "pure-bf16")
    assert v["verdict"] == "classic fimbulwinter"
    assert v["onset_50"] == 160  # frame 16: the dip to 0.4 at frame 15 resets it
    assert v["onset_99"] == 200
    assert v["window_frames"] == 4 and v["window_start_step"] == 360
    assert v["precision"] == "pure-bf16"
    assert "truly" in v["meaning"]


def test_exactly_99_percent_counts_as_frozen():
    v = L.fimbulwinter_verdict([1, 2, 3], [0.2, 0.99, 0.99], [1, 1, 1], "fp32")
    assert v["verdict"] == "classic fimbulwinter" and v["onset_99"] == 2 and v["onset_50"] == 2


def test_cold_with_jitter():
    rng = np.random.default_rng(0)
    steps = np.arange(100)
    frozen = 0.6 + 0.3 * rng.random(100)
    cold = np.where(steps < 50, 0.5, 0.992 + 0.008 * rng.random(100))
    v = L.fimbulwinter_verdict(steps, frozen, cold, "amp-bf16")
    assert v["verdict"] == "cold, not frozen"
    assert v["onset_50"] == 0 and v["onset_99"] is None
    assert v["window_frames"] == 10


def test_still_moving():
    steps = np.arange(20)
    v = L.fimbulwinter_verdict(steps, np.full(20, 0.3), np.full(20, 0.95), "fp32")
    assert v["verdict"] == "still moving" and v["onset_50"] is None and v["onset_99"] is None


def test_window_is_ceil_of_a_tenth_in_integers():
    # 30 frames: the window is 3 frames (0.1 * 30 in floating point would round up to 4).
    frozen = np.full(30, 0.995)
    frozen[26] = 0.0
    v = L.fimbulwinter_verdict(np.arange(30), frozen, np.ones(30), "pure-bf16")
    assert v["window_frames"] == 3 and v["verdict"] == "classic fimbulwinter" and v["onset_99"] == 27
    frozen = np.full(31, 0.995)
    frozen[27] = 0.0
    v = L.fimbulwinter_verdict(np.arange(31), frozen, np.ones(31), "pure-bf16")
    assert v["window_frames"] == 4 and v["verdict"] == "cold, not frozen" and v["onset_99"] == 28
    v = L.fimbulwinter_verdict([5, 6, 7, 8, 9], [0, 0, 0, 0, 1.0], [0, 0, 0, 0, 1.0], "fp32")
    assert v["window_frames"] == 1 and v["verdict"] == "classic fimbulwinter" and v["onset_99"] == 9


def test_meaning_depends_on_precision():
    args = ([0, 1], [1.0, 1.0], [1.0, 1.0])
    fp32 = L.fimbulwinter_verdict(*args, "fp32")["meaning"]
    amp = L.fimbulwinter_verdict(*args, "amp-bf16")["meaning"]
    pure = L.fimbulwinter_verdict(*args, "pure-bf16")["meaning"]
    assert "less than one" in fp32 and "less than one" in amp and "only pure-bf16" in amp
    assert pure != fp32 and "truly" in pure and "less than one" not in pure
    with pytest.raises(DucklingError):
        L.fimbulwinter_verdict(*args, "auto")


def test_empty_token_set_never_freezes():
    nan = np.full(5, np.nan)
    v = L.fimbulwinter_verdict(np.arange(5), nan, nan, "fp32")
    assert v["verdict"] == "still moving" and v["onset_50"] is None


def test_verdict_rejects_mismatched_series():
    with pytest.raises(DucklingError):
        L.fimbulwinter_verdict([1, 2, 3], [1.0, 1.0], [1.0, 1.0, 1.0], "fp32")
    with pytest.raises(DucklingError):
        L.fimbulwinter_verdict([], [], [], "fp32")


def test_kept_cells_count_the_coordinates_that_stayed():
    """+0 and -0 are one cell; a move of one cell and a sign flip each leave the cell."""
    bits = lambda xs: (np.asarray(xs, np.float32).view(np.uint32) >> 16).astype(np.uint16).reshape(1, -1)
    prev = bits([0.0, 1.0, 1.0, 2.0, -1.0, 3.0])
    now = bits([-0.0, 1.0, 1.0078125, 2.0, 1.0, 3.0])  # 1.0078125 is the next bf16 cell above 1
    assert L.kept_cells(prev, now).tolist() == [4]
    assert L.kept_cells(now, now).tolist() == [6]
