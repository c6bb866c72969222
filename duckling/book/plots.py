"""The Record's figures: one function per figure, each returning a Plot(fig, caption).

Functions only draw arrays that the Record (series.npz, record.json) or training logs already
hold; nothing here computes a metric. Figures are built with the object-oriented API (no
pyplot state), so they render the same under any backend and never leak.
Colours are fixed for the whole report: COLORS for token sets, REGIME_COLORS for lattice regimes.
"""
from __future__ import annotations

import io
import math
from typing import NamedTuple

import matplotlib.cm
import matplotlib.colors
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from duckling.analyze import fields
from duckling.analyze.fields import SETS
from duckling.book.api import fmt
from duckling.metrics.coherence import Z_LEVEL
from duckling.metrics.lattice import REGIMES

COLORS = {"phantom": "#7b2cbf", "natural_dead": "#e36414", "live": "#5c677d"}
LABELS = {"phantom": "phantom", "natural_dead": "natural dead", "live": "live"}
# natural dead is dashed so that it stays visible where it lies exactly on the phantom curve
STYLES = {"phantom": "-", "natural_dead": (0, (5, 2)), "live": "-"}
EMPTY = {"phantom": "no phantom rows in this run", "natural_dead": "no natural dead tokens in this corpus",
         "live": "no live tokens"}

# cold to hot: frozen is the darkest blue, teleporting the hottest red
REGIME_COLORS = {"frozen": "#08306b", "face_adjacent": "#2f7fc1", "neighbour": "#9ecae1",
                 "multi_cell": "#fdae6b", "teleporting": "#d7301f"}
REGIME_LABELS = {"frozen": "frozen (L1 = 0)", "face_adjacent": "face-adjacent (L1 = 1)",
                 "neighbour": "neighbour (L∞ = 1, L1 ≥ 2)", "multi_cell": "multi-cell (L∞ ≥ 2, L2 ≤ √d)",
                 "teleporting": "teleporting (L2 > √d)"}
PLATEAU_COLOR, FLOOR_COLOR, FIT_COLOR = "#c1121f", "#6c757d", "#111111"
RUN_STYLES = ("-", "--", ":", "-.")
RUN_COLORS = ("#1b4965", "#c1121f", "#2a9d8f", "#e9c46a", "#6d597a", "#3a86ff")

UNITS = "embedding units"
DPI = 150


class Plot(NamedTuple):
    fig: Figure
    caption: str


# ---- helpers ----------------------------------------------------------------------------------
def _figure(nrows: int = 1, ncols: int = 1, width: float = 8.0, height: float = 3.6, **kw):
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def present(series: dict, S: str) -> bool:
    """Whether token set S has any data in the Record (an empty set's series are all NaN)."""
    k = fields.key(S, "drift")
    return k in series and bool(np.isfinite(series[k]).any())


def _empty(ax, S: str) -> None:
    ax.text(0.5, 0.5, EMPTY[S], ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def _pos(y) -> np.ndarray:
    """Values for a log axis: non-positive ones (no logarithm) become gaps."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y > 0, y, np.nan)


def _late(steps) -> np.ndarray:
    """Mask of frames that can sit on a log step axis (frame 0 is step 0)."""
    return np.asarray(steps) > 0


def _xscale_for(ax, x) -> None:
    """Log x when the finite positive values span more than a decade; else linear with few, short labels
    (on a log axis a narrow range gets a label at every minor tick)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size and x.max() > 10 * x.min():
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))


def _yscale_for(ax, y) -> None:
    """Log y when the finite positive values span more than a decade, else linear."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y) & (y > 0)]
    if y.size and y.max() > 10 * y.min():
        ax.set_yscale("log")


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize="small", **kw)


def png(plot: Plot | Figure, dpi: int = DPI) -> bytes:
    fig = plot.fig if isinstance(plot, Plot) else plot
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save(plot: Plot | Figure, path, dpi: int = DPI) -> None:
    with open(path, "wb") as f:
        f.write(png(plot, dpi))


# ---- chapter 2: does it learn? ---------------------------------------------------------------
def loss_curves(metrics: dict, evals: dict, learning: dict) -> Plot:
    """Train and validation loss against step with the 6.75 plateau and the unigram floor; bits per byte."""
    fig, ax = _figure(1, 2, width=9.0)
    a, b = ax[0]
    a.plot(metrics["step"], metrics["loss"], color="#8d99ae", lw=0.8, label="train (every step)")
    if evals:
        a.plot(evals["step"], evals["val_loss"], "o-", color="#1b4965", ms=3, lw=1.5, label="validation")
        b.plot(evals["step"], evals["val_bpb"], "o-", color="#1b4965", ms=3, lw=1.5)
    a.axhline(learning["plateau"], color=PLATEAU_COLOR, ls="--", lw=1.2,
              label=f"old plateau {learning['plateau']:g}")
    a.axhline(learning["unigram_entropy"], color=FLOOR_COLOR, ls=":", lw=1.5,
              label=f"unigram entropy {learning['unigram_entropy']:.2f}")
    a.set(title="Loss", xlabel="step", ylabel="cross-entropy (nats per token)")
    b.set(title="Validation bits per byte", xlabel="step", ylabel="bits per byte of text")
    _legend(a)
    cap = (f"Left: train loss at every step and validation loss on held-out stories; dashed: the old model's "
           f"plateau ({learning['plateau']:g} nats), dotted: the corpus unigram entropy "
           f"({learning['unigram_entropy']:.3f} nats), the loss of a model that ignores context. Right: "
           f"validation bits per byte (final {fmt(learning.get('final_val_bpb'))}), comparable across tokenizers.")
    return Plot(fig, cap)


def optimizer(metrics: dict) -> Plot:
    """Learning rate and gradient norm against step."""
    fig, ax = _figure(1, 2, width=9.0, height=3.0)
    a, b = ax[0]
    a.plot(metrics["step"], metrics["lr"], color="#1b4965")
    a.set(title="Learning rate", xlabel="step", ylabel="learning rate")
    a.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    b.plot(metrics["step"], metrics["grad_norm"], color="#8d99ae", lw=0.8)
    b.set(title="Gradient norm (before clipping)", xlabel="step", ylabel="global L2 norm", yscale="log")
    return Plot(fig, "The schedule (linear warmup, cosine decay) and the global gradient norm before clipping.")


def driving_force(metrics: dict) -> Plot:
    """Softmax probability mass on phantom ids per step: the only force, besides weight decay, on phantom rows."""
    fig, ax = _figure(width=6.5, height=3.4)
    a = ax[0, 0]
    a.plot(metrics["step"], _pos(metrics["phantom_mass"]), color=COLORS["phantom"], lw=0.9)
    a.set(title="Driving force: probability mass on phantom ids", xlabel="step",
          ylabel="mean softmax mass on phantom ids")
    _yscale_for(a, metrics["phantom_mass"])
    last = metrics["phantom_mass"][-1] if len(metrics["phantom_mass"]) else math.nan
    cap = (f"Per step, the softmax probability the model puts on the phantom ids, averaged over positions "
           f"(logged by training). Gradients push phantom rows away from the hidden states in proportion to "
           f"it. Last step: {fmt(float(last))}.")
    return Plot(fig, cap)


# ---- chapter 3: the cloud --------------------------------------------------------------------
def centroid_paths(series: dict, summary: dict, sets=SETS) -> Plot:
    """Each set's centroid path projected on the plane of its two main directions of travel."""
    fig, ax = _figure(1, len(sets), width=3.3 * len(sets), height=3.6)
    steps = series["steps"]
    norm = matplotlib.colors.Normalize(steps.min(), max(steps.max(), 1))
    for a, S in zip(ax[0], sets):
        a.set_title(f"{LABELS[S]} centroid", color=COLORS[S])
        if not present(series, S):
            _empty(a, S)
            continue
        xy = series[fields.key(S, "path2d")]
        seg = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(seg, cmap="viridis", norm=norm, lw=2)
        lc.set_array(steps[1:])
        a.add_collection(lc)
        a.plot(*xy[0], "o", color="black", ms=5, label="init (step 0)")
        a.plot(*xy[-1], "*", color=COLORS[S], mec="black", ms=11, label=f"step {int(steps[-1]):,}")
        a.autoscale()
        a.set_aspect("equal", adjustable="datalim")
        a.set(xlabel=f"travel axis 1 ({UNITS})", ylabel=f"travel axis 2 ({UNITS})")
        _legend(a, loc="best")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax[0].tolist(), label="step",
                 shrink=0.85)
    shares = [(S, summary.get("drift_plane", {}).get(S, {}).get("explained")) for S in sets]
    shares = "; ".join(f"{LABELS[S]} {100 * e[0]:.1f}% and {100 * e[1]:.1f}%" for S, e in shares
                       if e is not None and all(np.isfinite(e)))
    cap = ("Centroid path c(t) − c(0) of each token set, projected on the plane of its own two main directions "
           "of travel (equal scales on both axes; colour is the step). The start is the initialisation."
           + (f" Share of the path's squared displacement along the two axes: {shares}." if shares else ""))
    return Plot(fig, cap)


def drift_velocity(series: dict, summary: dict, sets=SETS) -> Plot:
    """Drift |c(t) - c(0)| and centroid velocity per step with the late-phase trend."""
    fig, ax = _figure(1, 2, width=9.0)
    a, b = ax[0]
    steps = series["steps"]
    late = _late(steps)
    trends = summary.get("velocity_trend", {})
    for S in sets:
        if not present(series, S):
            continue
        a.plot(steps, series[fields.key(S, "drift")], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        tr = trends.get(S, {})
        b.plot(steps[late], _pos(series[fields.key(S, "velocity")][late]), color=COLORS[S], ls=STYLES[S], lw=1.1,
               label=f"{LABELS[S]}: {tr.get('trend', 'n/a')}")
        if all(np.isfinite(tr.get(k, math.nan) or math.nan) for k in ("slope", "intercept")) \
                and tr.get("start_step") is not None:
            x = steps[steps >= tr["start_step"]].astype(float)
            b.plot(x, np.exp(tr["intercept"] + tr["slope"] * x), color=FIT_COLOR, ls="--", lw=1)
    a.set(title="Drift of the centroid from its initial position", xlabel="step",
          ylabel=f"|c(t) − c(0)| ({UNITS})")
    b.set(title="Centroid velocity", xlabel="step", ylabel=f"|c(t) − c(t−1)| per step ({UNITS})",
          xscale="log", yscale="log")
    _legend(a)
    _legend(b)
    cap = ("Left: distance of each set's centroid from where it started. Right: distance the centroid moves per "
           "step (log axes; steps where it did not move at all leave gaps). The legend gives the late-phase trend "
           "(fitted over the last half of the frames; dashed where a fit exists).")
    return Plot(fig, cap)


def radius_curves(series: dict, sets=SETS) -> Plot:
    """RMS and median distance of the tokens to their centroid."""
    fig, ax = _figure(1, 2, width=9.0, height=3.4, sharey=True)
    a, b = ax[0]
    steps = series["steps"]
    for S in sets:
        if not present(series, S):
            continue
        a.plot(steps, series[fields.key(S, "rms_radius")], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        b.plot(steps, series[fields.key(S, "median_radius")], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
    a.set(title="RMS radius", xlabel="step", ylabel=f"distance to the centroid ({UNITS})")
    b.set(title="Median radius", xlabel="step")
    _legend(a)
    return Plot(fig, "Root-mean-square (left) and median (right) distance of each set's tokens to their own "
                     "centroid: whether the cloud expands, contracts or holds its size.")


def shape_curves(series: dict, summary: dict, sets=SETS) -> Plot:
    """Anisotropy, effective dimension and principal-axis turning of each cloud."""
    d = summary.get("config", {}).get("d_model")
    fig, ax = _figure(1, 3, width=10.5, height=3.3)
    a, b, c = ax[0]
    steps = series["steps"]
    late = _late(steps)
    for S in sets:
        if not present(series, S):
            continue
        a.plot(steps, series[fields.key(S, "anisotropy")], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        b.plot(steps, series[fields.key(S, "effective_dim")], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        c.plot(steps[late], series[fields.key(S, "axis_turn")][late], color=COLORS[S], ls=STYLES[S], lw=0.9, label=LABELS[S])
    a.set(title="Anisotropy", xlabel="step", ylabel="largest / mean gyration eigenvalue")
    b.set(title="Effective dimension", xlabel="step", ylabel="(Σλ)² / Σλ²" + (f"  (d = {d})" if d else ""))
    c.set(title="Principal-axis turn", xlabel="step", ylabel="angle per frame (degrees)", xscale="log",
          ylim=(0, 90))
    _legend(a)
    return Plot(fig, "Shape of each cloud from the eigenvalues λ of its gyration tensor: anisotropy 1 is a "
                     "sphere, larger is elongated; the effective dimension counts the directions the cloud "
                     "fills; the turn is the angle between consecutive principal axes (twisting).")


# ---- chapter 4: cooling ----------------------------------------------------------------------
def speed_curves(series: dict, summary: dict, sets=SETS) -> Plot:
    """Per-token speed quantiles against step on log-log axes, with the fitted late-phase power law."""
    fig, ax = _figure(1, len(sets), width=3.4 * len(sets), height=3.6, sharey=True)
    steps = series["steps"]
    late = _late(steps)
    x = steps[late]
    fits = summary.get("cooling", {})
    for a, S in zip(ax[0], sets):
        a.set_title(LABELS[S], color=COLORS[S])
        if not present(series, S):
            _empty(a, S)
            continue
        q10, q50, q90 = (_pos(series[fields.key(S, f"speed_q{q}")][late]) for q in (10, 50, 90))
        a.fill_between(x, q10, q90, color=COLORS[S], alpha=0.2, lw=0, label="10–90% of tokens")
        a.plot(x, q50, color=COLORS[S], lw=1.4, label="median")
        a.plot(x, _pos(series[fields.key(S, "speed_mean")][late]), color=COLORS[S], lw=0.8, ls=":", label="mean")
        fit = fits.get(S, {})
        if fit.get("start_step") and all(math.isfinite(fit.get(k) or math.nan) for k in ("slope", "intercept")):
            xs = x[x >= fit["start_step"]].astype(float)
            a.plot(xs, 10 ** fit["intercept"] * xs ** fit["slope"], color=FIT_COLOR, ls="--", lw=1.2,
                   label=f"late slope {fit['slope']:.2f} (R² {fmt(fit.get('r2'), 2)})")
        a.set(xscale="log", yscale="log", xlabel="step")
        _legend(a, loc="lower left")
    ax[0, 0].set_ylabel(f"speed |w_i(t) − w_i(t−1)| ({UNITS})")
    return Plot(fig, "Cooling curves: quantiles over tokens of the per-token speed at each step, on log-log "
                     "axes. The dashed line is the power law fitted to the median in the late phase (right half "
                     "of the log-step axis); its slope is the cooling exponent. Zero speeds (tokens unchanged in "
                     "bf16) have no logarithm and leave gaps.")


def cumulative(series: dict, sets=SETS) -> Plot:
    """Cumulative displacement |w_i(t) - w_i(0)| quantiles against step."""
    fig, ax = _figure(width=6.5, height=3.8)
    a = ax[0, 0]
    steps = series["steps"]
    late = _late(steps)
    x = steps[late]
    for S in sets:
        if not present(series, S):
            continue
        a.fill_between(x, _pos(series[fields.key(S, "cum_q10")][late]), _pos(series[fields.key(S, "cum_q90")][late]),
                       color=COLORS[S], alpha=0.18, lw=0)
        a.plot(x, _pos(series[fields.key(S, "cum_q50")][late]), color=COLORS[S], ls=STYLES[S], label=f"{LABELS[S]} median")
    a.set(title="Cumulative displacement from initialisation", xlabel="step",
          ylabel=f"|w_i(t) − w_i(0)| ({UNITS})", xscale="log", yscale="log")
    _legend(a)
    return Plot(fig, "How far each token has moved from its initial position: median (line) and 10–90% band "
                     "over the set's tokens, log-log axes. A curve that flattens means the tokens stopped "
                     "getting farther away.")


# ---- chapter 5: fimbulwinter -----------------------------------------------------------------
def _stack(a, series: dict, summary: dict, S: str, legend: bool) -> None:
    steps = series["steps"]
    late = _late(steps)
    fr = series[fields.key(S, "regimes")][late]
    a.stackplot(steps[late], fr.T, colors=[REGIME_COLORS[r] for r in REGIMES],
                labels=[REGIME_LABELS[r] for r in REGIMES], lw=0)
    fw = summary.get("fimbulwinter", {}).get(S, {})
    for key, ls in (("onset_50", "--"), ("onset_99", ":")):
        if fw.get(key) is not None and fw[key] > 0:
            a.axvline(fw[key], color="white", ls=ls, lw=1.5)
            a.text(fw[key], 0.97, key.replace("onset_", "frozen ≥ ") + "% ", transform=a.get_xaxis_transform(),
                   rotation=90, ha="right", va="top", color="white", fontsize="x-small")
    if fw.get("window_start_step"):
        a.axvspan(fw["window_start_step"], steps[-1], ymin=0, ymax=0.03, color="black")
    a.set(xscale="log", ylim=(0, 1), xlim=(steps[late].min(), steps[-1]), ylabel="fraction of tokens")
    a.set_title(f"{LABELS[S]}: {fw.get('verdict', 'n/a')}", color=COLORS[S])
    if legend:
        a.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize="small")


def regime_shares(series: dict, summary: dict, sets=SETS) -> Plot:
    """Stacked lattice-regime fractions against step (the fimbulwinter test), one panel per set."""
    shown = [S for S in sets if present(series, S)]
    fig, ax = _figure(len(sets), 1, width=8.5, height=2.3 * len(sets) + 0.4, sharex=True)
    for _i, (a, S) in enumerate(zip(ax[:, 0], sets)):
        if S in shown:
            _stack(a, series, summary, S, legend=(S == shown[0]))
        else:
            a.set_title(LABELS[S], color=COLORS[S])
            _empty(a, S)
    ax[-1, 0].set_xlabel("step")
    cap = ("Fraction of tokens in each lattice regime at each step (bf16 cells crossed since the previous "
           "frame; log step axis). White lines: the steps from which the frozen fraction stays at or above "
           "50% (dashed) and 99% (dotted) to the end; the black bar marks the last 10% of frames, the window "
           "of the verdict in each panel's title.")
    return Plot(fig, cap)


def lattice_views(series: dict, summary: dict, S: str = "phantom") -> Plot:
    """Cell-count view (regimes) beside the local-ULP view and the zero-crossing rate, for one set."""
    fig, ax = _figure(1, 3, width=11.0, height=3.5)
    a, b, c = ax[0]
    if not present(series, S):
        for x in ax[0]:
            _empty(x, S)
        return Plot(fig, EMPTY[S] + ".")
    _stack(a, series, summary, S, legend=False)
    a.set_title(f"cells crossed ({LABELS[S]})", color=COLORS[S])
    a.set_xlabel("step")
    steps = series["steps"]
    late = _late(steps)
    b.plot(steps[late], _pos(series[fields.key(S, "ulp_q50")][late]), color=COLORS[S], label="median token")
    b.plot(steps[late], _pos(series[fields.key(S, "ulp_q90")][late]), color=COLORS[S], ls=":", lw=1.8, label="90th percentile")
    b.axhline(1, color=FIT_COLOR, lw=0.8, ls=":", label="1 ULP")
    b.axhline(0.5, color=FLOOR_COLOR, lw=0.8, ls="-.", label="½ ULP (rounds away)")
    b.set(title="local-ULP view", xlabel="step", ylabel="max over coordinates |Δw| / ulp(w)",
          xscale="log", yscale="log")
    _legend(b)
    c.plot(steps[late], _pos(series[fields.key(S, "zero_cross_frac")][late]), color=COLORS[S])
    c.set(title="zero crossings", xlabel="step", ylabel="fraction of coordinates changing sign",
          xscale="log", yscale="log")
    cap = (f"Three views of the {LABELS[S]} tokens' step-to-step motion. Left: regimes by bf16 cells crossed. "
           "Middle: the largest coordinate move of each token in units of the local ULP at its previous value "
           "(median and 90th percentile over tokens). Right: the fraction of coordinates that changed sign. "
           "The lattice is logarithmic, so a coordinate crossing zero steps through very many cells and counts "
           "as 'teleporting' even when its move is tiny; the ULP view does not have that artefact.")
    return Plot(fig, cap)


# ---- chapter 6: coherence --------------------------------------------------------------------
def coherence_curves(series: dict, summary: dict, sets=SETS, z: float = Z_LEVEL) -> Plot:
    """Single-step and windowed coherence, alignment with the centroid, and the unmoved-token count.

    The shaded band is ±z standard deviations of the mean cosine of random directions (the Record's
    `expected_random`), the range the Record reads as 'independent'."""
    k = summary.get("k")
    fig, ax = _figure(2, 2, width=9.5, height=6.2, sharex=True)
    (a, b), (c, e) = ax
    steps = series["steps"]
    late = _late(steps)
    co = summary.get("coherence", {})
    for S in sets:
        if not present(series, S):
            continue
        kw = {"color": COLORS[S], "ls": STYLES[S], "lw": 1.1, "label": LABELS[S]}
        a.plot(steps[late], series[fields.key(S, "coherence")][late], **kw)
        b.plot(steps[late], series[fields.key(S, "coherence_k")][late], **kw)
        c.plot(steps[late], series[fields.key(S, "alignment")][late], **kw)
        e.plot(steps[late], series[fields.key(S, "n_zero")][late], **kw)
        r = co.get(S, {}).get("expected_random")
        if r is not None and math.isfinite(r):
            for x in (a, b):
                x.axhspan(-z * r, z * r, color=COLORS[S], alpha=0.12, lw=0)
    for x in (a, b, c):
        x.axhline(0, color="black", lw=0.5)
    a.set(title="Coherence, single step", ylabel="mean pairwise cosine of ΔW_i")
    b.set(title=f"Coherence over windows of {k} steps" if k else "Windowed coherence",
          ylabel="mean pairwise cosine of ΔW_i")
    c.set(title="Alignment with the centroid's motion", ylabel="mean cos(ΔW_i, Δc)", xlabel="step")
    e.set(title="Tokens that did not move", ylabel="tokens with ΔW_i = 0", xlabel="step")
    for x in ax.ravel():
        x.set_xscale("log")
    _legend(a)
    cap = ("Do tokens move together? Mean pairwise cosine of the displacement vectors of the tokens in each set "
           "(1: a swarm moving as one, 0: independent directions), per step and over windows of k steps "
           f"(single-step bf16 differences are quantised). Shaded bands: ±{z:g} standard deviations of the value "
           "for random, independent directions, inside which a set reads as independent. Bottom: the mean cosine with the centroid's own displacement, and the tokens with zero "
           "displacement, which have no direction and are counted apart.")
    return Plot(fig, cap)


# ---- chapter 7: phantom vs natural dead ------------------------------------------------------
PAIR = ("phantom", "natural_dead")


def pair_metrics(series: dict, summary: dict) -> Plot:
    """Phantom and natural dead side by side: drift, velocity, radius, median speed."""
    fig, ax = _figure(2, 2, width=9.5, height=6.0, sharex=True)
    steps = series["steps"]
    late = _late(steps)
    panels = [("drift", f"|c(t) − c(0)| ({UNITS})", "Drift", False),
              ("velocity", f"centroid speed per step ({UNITS})", "Centroid velocity", True),
              ("rms_radius", f"RMS radius ({UNITS})", "Radius", False),
              ("speed_q50", f"median |ΔW_i| ({UNITS})", "Median token speed", True)]
    for a, (name, ylabel, title, logy) in zip(ax.ravel(), panels):
        for S in PAIR:
            if present(series, S):
                y = series[fields.key(S, name)][late]
                a.plot(steps[late], _pos(y) if logy else y, color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        a.set(title=title, ylabel=ylabel, xscale="log", yscale="log" if logy else "linear")
    for a in ax[1]:
        a.set_xlabel("step")
    _legend(ax[0, 0])
    missing = [LABELS[S] for S in PAIR if not present(series, S)]
    note = f" ({EMPTY['natural_dead']}: only phantom shown.)" if "natural dead" in missing else ""
    return Plot(fig, "The same cloud and cooling metrics for the two kinds of never-seen token, on one set of "
                     "axes each (log step axis)." + note)


def speed_distributions(series: dict, summary: dict) -> Plot:
    """Empirical distribution functions of per-token speed at the fixed test steps, phantom vs natural dead."""
    test_steps = np.asarray(series.get("test_steps", []))
    n = max(1, test_steps.size)
    fig, ax = _figure(1, n, width=min(2.9 * n + 0.6, 12.0), height=3.2, sharey=True)
    tests = {t["step"]: t for t in summary.get("compare", {}).get("tests", [])}
    for i, a in enumerate(ax[0]):
        if i >= test_steps.size:
            _empty(a, "natural_dead")
            continue
        t = int(test_steps[i])
        shown = []
        for S in PAIR:
            v = np.asarray(series.get(fields.key(S, "speeds_at_tests"), np.empty((0, 0))))
            if v.ndim == 2 and v.shape[1] and i < v.shape[0]:
                x = np.sort(v[i][np.isfinite(v[i])])
                a.step(x, np.arange(1, x.size + 1) / max(x.size, 1), where="post", color=COLORS[S],
                       ls=STYLES[S], label=LABELS[S])
                shown.append(x)
        if shown:
            _xscale_for(a, np.concatenate(shown))
        r = tests.get(t, {})
        a.set(title=f"step {t:,}\nKS p = {fmt(r.get('ks_p'), 2)}", xlabel=f"speed ({UNITS})")
    ax[0, 0].set_ylabel("fraction of tokens ≤ speed")
    _legend(ax[0, 0], loc="upper left")
    return Plot(fig, "Distribution of per-token speed |ΔW_i| at the fixed test steps: the fraction of tokens "
                     "moving at most a given speed (log axis where speeds span more than a decade). Identical "
                     "behaviour gives overlapping curves; the Kolmogorov–Smirnov statistic is the largest "
                     "vertical gap.")


# ---- comparison chapter: several runs --------------------------------------------------------
def overlay_regimes(records: list[tuple[str, dict, dict]], S: str = "phantom") -> Plot:
    """Regime fractions of one set for several runs: one panel per regime, one line per run."""
    # two rows of three at the page's width (one row of five is unreadable once scaled to a page);
    # the sixth panel holds the legend
    fig, ax = _figure(2, 3, width=9.0, height=5.6, sharey=True)
    panels = ax.ravel()
    for i, (_run, series, _summary) in enumerate(records):
        if not present(series, S):
            continue
        steps = series["steps"]
        late = _late(steps)
        for j, a in enumerate(panels[: len(REGIMES)]):
            a.plot(steps[late], series[fields.key(S, "regimes")][late, j], color=RUN_COLORS[i % len(RUN_COLORS)],
                   ls=RUN_STYLES[i % len(RUN_STYLES)], lw=1.4)
    for a, r in zip(panels, REGIMES):
        a.set(title=REGIME_LABELS[r], xscale="log", xlabel="step", ylim=(-0.02, 1.02))
    for a in ax[:, 0]:
        a.set_ylabel(f"fraction of {LABELS[S]} tokens")
    from matplotlib.lines import Line2D

    key = panels[-1]
    key.axis("off")
    key.legend(handles=[Line2D([], [], color=RUN_COLORS[i % len(RUN_COLORS)], ls=RUN_STYLES[i % len(RUN_STYLES)],
                               lw=1.4, label=r) for i, (r, _, _) in enumerate(records)],
               title="run", loc="center", frameon=False)
    return Plot(fig, f"Lattice regime fractions of the {LABELS[S]} tokens, one line per run (log step axis).")


def overlay_cooling(records: list[tuple[str, dict, dict]], S: str = "phantom") -> Plot:
    """Median per-token speed (and 10-90% band) of one set for several runs, log-log."""
    fig, ax = _figure(width=7.0, height=3.8)
    a = ax[0, 0]
    for i, (run, series, summary) in enumerate(records):
        if not present(series, S):
            continue
        steps = series["steps"]
        late = _late(steps)
        col = RUN_COLORS[i % len(RUN_COLORS)]
        a.fill_between(steps[late], _pos(series[fields.key(S, "speed_q10")][late]), _pos(series[fields.key(S, "speed_q90")][late]),
                       color=col, alpha=0.12, lw=0)
        slope = summary.get("cooling", {}).get(S, {}).get("slope")
        a.plot(steps[late], _pos(series[fields.key(S, "speed_q50")][late]), color=col, ls=RUN_STYLES[i % len(RUN_STYLES)],
               label=f"{run} (late slope {fmt(slope, 3)})")
    a.set(title=f"Cooling curves, {LABELS[S]} tokens", xlabel="step", ylabel=f"median |ΔW_i| ({UNITS})",
          xscale="log", yscale="log")
    _legend(a)
    return Plot(fig, f"Median speed of the {LABELS[S]} tokens per run (band: 10–90% of tokens), log-log axes.")


def overlay_drift(records: list[tuple[str, dict, dict]], sets=PAIR) -> Plot:
    """Centroid drift of phantom (solid) and natural dead (dashed) tokens for several runs."""
    fig, ax = _figure(width=7.0, height=3.8)
    a = ax[0, 0]
    for i, (run, series, _summary) in enumerate(records):
        for S, ls in zip(sets, RUN_STYLES):
            if present(series, S):
                a.plot(series["steps"], series[fields.key(S, "drift")], color=RUN_COLORS[i % len(RUN_COLORS)], ls=ls,
                       label=f"{run}: {LABELS[S]}")
    a.set(title="Centroid drift", xlabel="step", ylabel=f"|c(t) − c(0)| ({UNITS})")
    _legend(a)
    return Plot(fig, "Drift of the centroid from its initial position per run: phantom solid, natural dead dashed.")


# ---- the frequency spectrum ------------------------------------------------------------------
SEEN_CMAP = "viridis"  # the seen sets, rarest (dark) to most frequent (light)


def count_label(b: dict) -> str:
    """A count set's train counts as a short label: phantom, 0, 1, 2–3, ..., 1,001+."""
    lo, hi = b["counts"]
    if lo is None:
        return "phantom"
    if hi is None:
        return f"{lo:,}+"
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def by_train_count(spectrum: dict) -> Plot:
    """Each count set's distance from the phantom centroid, final speed, cumulative displacement, frozen
    share, alignment with the dead drift and drift, against its train count (the Record's spectrum)."""
    bins = [b for b in spectrum.get("bins", []) if b["n"]]
    fig, ax = _figure(2, 3, width=11.0, height=6.0, sharex=True)
    panels = [("dist_rel", "dist", "Distance from the phantom centroid", "in phantom RMS radii"),
              ("final_speed", "speed", "Final speed", "|Δw_i| per step"),
              ("cumulative", "cumulative", "Cumulative displacement", "|w_i(T) − w_i(0)|"),
              ("frozen", None, "Frozen over the last frame pair", "share of tokens with L1 = 0"),
              ("swarm_cos", None, "Moving along the phantoms' drift", "mean cosine"),
              ("drift", None, "Drift of the set's centroid", "|c(T) − c(0)|")]
    if not bins:
        for a in ax.ravel():
            a.text(0.5, 0.5, "no spectrum in this Record", ha="center", va="center", transform=a.transAxes)
            a.set_xticks([])
            a.set_yticks([])
        return Plot(fig, "The Record holds no frequency spectrum: " + spectrum.get("answer", "it was not computed."))
    x = np.arange(len(bins))
    seen = [i for i, b in enumerate(bins) if b["counts"][0] not in (None, 0)]
    cmap = matplotlib.colormaps[SEEN_CMAP]
    colors = [COLORS["phantom"] if b["name"] == "phantom" else COLORS["natural_dead"] if b["counts"][0] == 0
              else cmap(0.15 + 0.7 * seen.index(i) / max(1, len(seen) - 1)) for i, b in enumerate(bins)]
    r = spectrum.get("phantom_rms_radius") or math.nan
    join = [i for i, b in enumerate(bins) if b["name"] == spectrum.get("joins", {}).get("distance")]
    for a, (key, band, title, ylabel) in zip(ax.ravel(), panels):
        y = np.array([b[key] for b in bins], dtype=np.float64)
        a.plot(x, y, color="#adb5bd", lw=1, zorder=1)
        if band:
            scale = 1 / r if key == "dist_rel" else 1.0
            lo = np.array([b[f"{band}_q10"] for b in bins], dtype=np.float64) * scale
            hi = np.array([b[f"{band}_q90"] for b in bins], dtype=np.float64) * scale
            a.vlines(x, lo, hi, colors=colors, lw=2.5, alpha=0.45, zorder=2)
        a.scatter(x, y, c=colors, s=36, zorder=3, edgecolors="black", linewidths=0.5)
        for i in join:
            a.axvline(i, color=FIT_COLOR, ls=":", lw=1)
        a.set(title=title, ylabel=ylabel)
    ax[0, 0].axhline(1, color=COLORS["phantom"], lw=0.8, ls="--")
    ax[1, 0].set_ylim(-0.03, 1.03)
    ax[1, 1].axhline(0, color="black", lw=0.5)
    for a in ax[1]:
        a.set_xticks(x, [count_label(b) for b in bins], rotation=45, ha="right")
        a.set_xlabel("times seen in training")
    cap = ("The token sets by how often their tokens occur in the training stream, from the phantom rows and "
           "the natural dead (0) to the most frequent, at the last frame. Points: the median over the set's "
           "tokens (frozen share, alignment with the phantom centroid's drift and drift: the set's value); bars: "
           f"10–90% of its tokens. Speeds, displacements and drift are in {UNITS}; distance is in units of the "
           "phantom cloud's RMS radius (dashed: 1)"
           + (f"; the dotted line marks the first set from which every set is at least "
              f"{spectrum.get('join_level', 0.5):.0%} of the way from the phantoms to the most frequent tokens."
              if join else "."))
    return Plot(fig, cap)


# ---- the motion field (chapter 3) --------------------------------------------------------------
FIELD_PARTS = ("expansion", "shear", "rotation")


def expansion_shear_rotation(shear: dict, sets=SETS) -> Plot:
    """Expansion rate, shear and rotation of each set's fitted linear motion field against step, each
    beside its random-walk baseline (the Record's shear)."""
    fig, ax = _figure(1, 3, width=10.5, height=3.6)
    steps = np.asarray(shear.get("steps", []), dtype=np.float64)
    per = shear.get("sets", {})
    for a, p in zip(ax[0], FIELD_PARTS):
        drawn = []
        for S in sets:
            v = per.get(S)
            if not v or not np.isfinite(np.asarray(v[p], dtype=np.float64)).any():
                continue
            y, base = np.asarray(v[p], dtype=np.float64), np.asarray(v[f"{p}_baseline"], dtype=np.float64)
            if p == "expansion":  # signed: the baseline is a band of ±1 spread about 0
                a.fill_between(steps, -base, base, color=COLORS[S], alpha=0.15, lw=0)
                a.plot(steps, y, color=COLORS[S], ls=STYLES[S], lw=1.2, label=LABELS[S])
            else:
                a.plot(steps, _pos(y), color=COLORS[S], ls=STYLES[S], lw=1.2, label=LABELS[S])
                a.plot(steps, _pos(base), color=COLORS[S], ls=":", lw=1)
                drawn += [y, base]
        if p == "expansion":
            a.axhline(0, color="black", lw=0.5)
            a.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        elif drawn:
            _yscale_for(a, np.concatenate(drawn))
        a.set(title={"expansion": "Expansion rate", "shear": "Shear", "rotation": "Rotation"}[p], xlabel="step",
              ylabel={"expansion": "trace(A) / d per step", "shear": "|traceless symmetric part of A|",
                      "rotation": "|antisymmetric part of A|"}[p])
        if steps.size and steps.min() > 0:
            _xscale_for(a, steps)
    _legend(ax[0, 0])
    cap = ("Each set's displacements per step fitted to a linear field about its centroid, Δw_i ≈ v + A (w_i − c), "
           "at log-spaced frame pairs: the expansion rate trace(A)/d (positive: the cloud grows), the shear (size "
           "of A's traceless symmetric part) and the rotation (size of its antisymmetric part). Dotted lines and "
           "the shaded band: the same fit's expected size for a random walk with the set's own steps.")
    return Plot(fig, cap)


# ---- why they move ------------------------------------------------------------------------------
def _why_sets(why: dict) -> list[str]:
    return [S for S in PAIR if S in why.get("series", {})]


def why_direction(why: dict) -> Plot:
    """Cosines per frame pair: the centroid's displacement with -lr a; -lr a and the gradient with h."""
    fig, ax = _figure(1, 2, width=9.5, height=3.4, sharex=True)
    steps = np.asarray(why.get("series", {}).get("steps", []))
    a, b = ax[0]
    for S in _why_sets(why):
        c = why["series"][S]
        a.plot(steps, c["cos_velocity_step"], color=COLORS[S], ls=STYLES[S], label=LABELS[S])
        b.plot(steps, c["cos_step_hidden"], color=COLORS[S], ls=STYLES[S], label=f"{LABELS[S]}: −lr·a with h")
        b.plot(steps, c["cos_grad_hidden"], color=COLORS[S], ls=":", lw=1.4, label=f"{LABELS[S]}: g with h")
    if not _why_sets(why):
        _empty(a, "phantom")
    a.set(title="Centroid displacement Δc vs −lr·a", ylabel="cosine", xlabel="step")
    b.set(title="Adam step and gradient vs mean hidden state h", ylabel="cosine", xlabel="step", ylim=(-1.05, 1.05))
    for x in (a, b):
        x.axhline(0, color="black", lw=0.5)
    _legend(a)
    _legend(b, loc="center right")
    return Plot(fig, "Where the forces point. Left: cosine between each set's centroid displacement over a frame "
                     "pair and the Adam step the forces log, −Σ lr(t)·a over the steps of the pair (1: the cloud "
                     "goes exactly where Adam sends it). Right: cosine of that step (solid) and of the mean loss "
                     "gradient g (dotted) with the mean final hidden state h; −1 is straight away from h.")


def why_speed(why: dict) -> Plot:
    """Observed median speed against lr(t) sqrt(d) RMS(a), and their ratio, per frame pair."""
    fig, ax = _figure(1, 2, width=9.5, height=3.4, sharex=True)
    steps = np.asarray(why.get("series", {}).get("steps", []))
    a, b = ax[0]
    for S in _why_sets(why):
        c = why["series"][S]
        obs, exp = np.asarray(c["speed_observed"], float), np.asarray(c["speed_expected"], float)
        a.plot(steps, _pos(obs), color=COLORS[S], ls=STYLES[S], label=f"{LABELS[S]}: movie")
        a.plot(steps, _pos(exp), color=COLORS[S], ls=":", lw=1.4, label=f"{LABELS[S]}: lr·√d·RMS(a)")
        with np.errstate(invalid="ignore", divide="ignore"):
            b.plot(steps, obs / exp, color=COLORS[S], ls=STYLES[S], label=LABELS[S])
    if not _why_sets(why):
        _empty(a, "phantom")
    tol = why.get("tolerance", 0.05)
    b.axhspan(1 - tol, 1 + tol, color="#999999", alpha=0.2, lw=0)
    b.axhline(1, color="black", lw=0.5)
    a.set(title="Median token speed", ylabel=f"|ΔW_i| per step ({UNITS})", xlabel="step", yscale="log")
    b.set(title="Movie ÷ schedule", ylabel="median speed / lr·√d·RMS(a)", xlabel="step")
    _legend(a)
    return Plot(fig, "Is cooling the learning-rate schedule? Left: each set's median speed in the movie (solid) and "
                     "the speed of Adam's step alone, lr(t)·√d·RMS(a) (dotted). Right: their ratio; the grey band "
                     f"is ±{tol:.0%}. Where the step shrinks towards one bf16 cell the frames round it, up to a "
                     "whole cell or away to nothing, and the ratio leaves the band.")


def why_freezing(why: dict) -> Plot:
    """Frozen fractions per frame pair, one panel per set: the movie's rows, the forces' rows and coordinates."""
    sets = _why_sets(why) or ["phantom"]
    fig, ax = _figure(1, len(sets), width=4.8 * len(sets), height=3.4, sharey=True)
    steps = np.asarray(why.get("series", {}).get("steps", []))
    for a, S in zip(ax[0], sets):
        c = why.get("series", {}).get(S)
        if c is None:
            _empty(a, S)
            continue
        a.plot(steps, c["frozen_observed"], color=COLORS[S], lw=2.0, label="rows, movie (L1 = 0)")
        a.plot(steps, c["frozen_rows"], color="black", ls="--", lw=1.2, label="rows, forces (p^d)")
        a.plot(steps, c["frozen_coords"], color="#777777", ls=":", lw=1.4, label="coordinates, forces (p)")
        a.set(title=f"{LABELS[S]} tokens", xlabel="step", ylim=(-0.02, 1.02))
    ax[0, 0].set_ylabel("fraction frozen")
    _legend(ax[0, 0], loc="upper left")
    return Plot(fig, "Freezing predicted and seen. Grey dotted: the fraction p of the set's coordinates whose update "
                     "is under half their bf16 ULP (the forces log); black dashed: the rows predicted frozen, p^d; "
                     "coloured: the rows whose bf16 value did not change between frames (the movie).")
