"""The Record's series, one entry per metric: name -> definition -> fast extractor -> plain reference.

Each Field names the series it fills (`<set>/<name>` in series.npz), the plain function in
duckling.metrics that defines it (its docstring holds STUDY.md's formula, and the Methods chapter
prints it), how the pass reads it from the kernel's sums for one set and frame (`fast`, on a
FastView), and how the same value follows from the definitions on plain arrays (`plain`, on a
PlainView: what tests/test_record.py holds the pass to). `needs` says which frames it takes:
"frame" (this one and frame 0), "prev" (and the one before), "back" (and the one k back), or
"sequence" (the whole run's centroids and principal axes, after the pass). Fields run in table
order; a fast extractor may overwrite its own scratch (quantiles partition in place), so a field
that reads a buffer comes before the one that reorders it.

Adding a metric: its definition in duckling/metrics, one Field here, and, if the kernel does not
already sum what it needs, its accumulator in analyze/fast.py.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from duckling.metrics import cloud, coherence, cooling, lattice


@dataclass(frozen=True)
class Field:
    names: tuple[str, ...]  # the series it fills, per set
    definition: Callable  # the plain function in duckling.metrics: the formula
    needs: str  # "frame", "prev", "back" or "sequence"
    fast: Callable | None  # FastView -> one value per name (None for "sequence" fields)
    plain: Callable  # PlainView -> one value per name (the reference)
    shape: tuple = ()  # per value: () for a scalar, ("d",) for a vector in R^d, (n,) otherwise


class FastView:
    """One set's slice of one frame's kernel sums (analyze.fast.Sums `f`, rows a:b of set j)."""

    def __init__(self, f, j: int, a: int, b: int, d: int, gap: float, moved: bool):
        self.f, self.j, self.a, self.b, self.n, self.d = f, j, a, b, b - a, d
        if moved:  # per-step speeds: divided by the step gap when frames are record_every apart
            self.speed = f.speed[a:b] if gap == 1.0 else f.speed[a:b] / gap

    def coherence(self, unit, moving: int, mean=None) -> dict:
        return coherence.from_sums(unit, moving, self.n - moving, mean)


@dataclass
class PlainView:
    """One set's rows at one frame as plain arrays: bits B and float32 X of this frame, of the one
    before (Bp, Xp), of frame 0 (X0) and of the one k back (Xk); the step gap; the centroids and
    axes so far (for the sequence fields)."""
    B: np.ndarray
    X: np.ndarray
    X0: np.ndarray
    Bp: np.ndarray | None = None
    Xp: np.ndarray | None = None
    Xk: np.ndarray | None = None
    gap: float = 1.0
    centroids: list | None = None  # this set's centroids of frames 0..i
    axes: list | None = None  # its principal axes of frames 0..i

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def speed(self) -> np.ndarray:
        return cooling.speed(self.Xp, self.X) / self.gap


def _gyration(v: PlainView):
    eigs, axis = cloud.gyration(v.X, cloud.centroid(v.X))
    return (*cloud.shape(eigs), axis)


def _regimes(v: PlainView):
    L1, Linf, L2 = lattice.lattice_displacement(v.Bp, v.B)
    return (lattice.regime_fractions(lattice.classify(L1, Linf, L2, v.d)),)


def _coherence(v: PlainView):
    c = coherence.coherence(v.X - v.Xp)
    return c["mean_cos"], c["n_zero"]


def _moving(v: FastView, k: int) -> int:
    return int(v.f.moving[v.j][k])


def _fast_coherence(v: FastView):
    v.last = c = v.coherence(v.f.unit[v.j], _moving(v, 0), v.f.d_total[v.j] / v.n)  # alignment reads it too
    return c["mean_cos"], c["n_zero"]


def _last(seq: list, fn: Callable, *more) -> float:
    """fn on the last two entries of a sequence (NaN at frame 0)."""
    return fn(seq[-2], seq[-1], *more) if len(seq) > 1 else math.nan


Q = cooling.QUANTILES
FIELDS = (
    Field(("rms_radius", "median_radius"), cloud.radius, "frame",
          lambda v: cloud.radius_of(v.f.r2[v.a:v.b]),
          lambda v: cloud.radius(v.X, cloud.centroid(v.X))),
    Field(("anisotropy", "effective_dim", "axis"), cloud.shape, "frame",
          lambda v: cloud.shape_of(cloud.gyration_tensor(v.f.Xc[v.a:v.b])), _gyration,
          shape=((), (), ("d",))),
    Field(("cum_q10", "cum_q50", "cum_q90"), cooling.cumulative_displacement, "frame",
          lambda v: cooling.quantiles(v.f.cum[v.a:v.b], Q, overwrite=True),
          lambda v: np.quantile(cooling.cumulative_displacement(v.X0, v.X), Q)),
    Field(("centroid",), cloud.centroid, "frame",
          lambda v: (v.f.total[v.j] / v.n,), lambda v: (cloud.centroid(v.X),), shape=(("d",),)),
    Field(("speed_mean",), cooling.speed, "prev",
          lambda v: (v.speed.mean(),), lambda v: (v.speed.mean(),)),
    Field(("speed_q10", "speed_q50", "speed_q90"), cooling.speed, "prev",
          lambda v: cooling.quantiles(v.speed, Q, overwrite=True), lambda v: np.quantile(v.speed, Q)),
    Field(("regimes",), lattice.classify, "prev",
          lambda v: (lattice.regime_fractions(lattice.classify(v.f.L1[v.a:v.b], v.f.Linf[v.a:v.b],
                                                                 np.sqrt(v.f.L2sq[v.a:v.b]), v.d)),),
          _regimes, shape=((len(lattice.REGIMES),),)),
    Field(("ulp_q50", "ulp_q90"), lattice.ulp_displacement, "prev",
          lambda v: cooling.quantiles(v.f.ulp_max[v.a:v.b], (0.5, 0.9), overwrite=True),
          lambda v: np.quantile(lattice.ulp_displacement(v.Bp, v.B)[0], (0.5, 0.9))),
    Field(("zero_cross_frac",), lattice.zero_crossings, "prev",
          lambda v: (v.f.zero_cross[v.a:v.b].sum() / (v.n * v.d),),
          lambda v: (lattice.zero_crossings(v.Bp, v.B).sum() / v.B.size,)),
    Field(("kept_cells",), lattice.kept_cells, "prev",
          lambda v: (v.f.kept[v.a:v.b].sum() / (v.n * v.d),),
          lambda v: (lattice.kept_cells(v.Bp, v.B).sum() / v.B.size,)),
    Field(("coherence", "n_zero"), coherence.coherence, "prev", _fast_coherence, _coherence),
    Field(("alignment",), coherence.centroid_alignment, "prev", lambda v: (v.last["centroid_cos"],),
          lambda v: (coherence.centroid_alignment(v.X - v.Xp),)),
    Field(("coherence_k",), coherence.coherence, "back",
          lambda v: (v.coherence(v.f.unit_k[v.j], _moving(v, 1))["mean_cos"],),
          lambda v: (coherence.coherence(v.X - v.Xk)["mean_cos"],)),
    Field(("drift",), cloud.drift, "sequence", None, lambda v: (cloud.drift(v.centroids[0], v.centroids[-1]),)),
    Field(("velocity",), cloud.velocity, "sequence", None, lambda v: (_last(v.centroids, cloud.velocity, v.gap),)),
    Field(("axis_turn",), cloud.axis_turn, "sequence", None, lambda v: (_last(v.axes, cloud.axis_turn),)),
)
PER_FRAME = tuple(f for f in FIELDS if f.needs != "sequence")


def sequence(C: np.ndarray, A: np.ndarray, gaps: np.ndarray) -> dict[str, np.ndarray]:
    """The "sequence" fields of one set from its centroids C (T, d) and axes A (T, d): each frame's
    value from the frames before (NaN where there are none)."""
    T = C.shape[0]
    out = {m: np.full(T, np.nan) for f in FIELDS if f.needs == "sequence" for m in f.names}
    out["drift"] = cloud.drift(C[0], C)
    out["velocity"][1:] = cloud.velocity(C[:-1], C[1:], gaps)
    out["axis_turn"][1:] = cloud.axis_turn(A[:-1], A[1:])
    return out


def shapes(d: int) -> dict[str, tuple]:
    """Every per-frame value's shape for one set (vectors in R^d as (d,))."""
    out = {}
    for f in PER_FRAME:
        for name, s in zip(f.names, f.shape or ((),) * len(f.names)):
            out[name] = tuple(d if x == "d" else x for x in s)
    return out


def key(set_name: str, name: str) -> str:
    """The Record's key of a set's series; refuses a name no field fills (a typo in a chapter or plot)."""
    if name not in SERIES + DERIVED:
        raise KeyError(f"no field fills {name!r}; the Record's series are {', '.join(SERIES + DERIVED)}")
    return f"{set_name}/{name}"


INTERNAL = ("axis",)  # kept through the pass for axis_turn, not a series of the Record
SERIES = tuple(m for f in FIELDS for m in f.names if m not in INTERNAL)  # each set's, in table order
SCALARS = tuple(m for m in SERIES if m not in ("centroid", "regimes"))
DERIVED = ("path2d", "speeds_at_tests")  # from the series after the pass (stage.compute): not fields
SETS = ("phantom", "natural_dead", "live")  # the token sets every series is computed for


def documented(fns) -> dict[str, dict]:
    """Functions as Methods prints them: {name: {"series": [], "doc": docstring}}."""
    return {fn.__name__: {"series": [], "doc": inspect.getdoc(fn) or ""} for fn in fns}


def definitions() -> dict[str, Callable]:
    """The definition of every series, by the name Methods shows (first field first)."""
    out = {}
    for f in FIELDS:
        out.setdefault(f.definition.__name__, f.definition)
    return out
