# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Methods
#
# What every quantity in this book is, how it was computed, and the thresholds behind each verdict.
# Definitions are the docstrings of the functions that define the Record's series (the compiled pass
# is held to each by a test) and of those that computed its summaries and verdicts, as they were when
# this run was analysed (their formulas set as math).

# %%
import math

from duckling.book import api, plots
from duckling.book.api import fmt, md, table
from duckling.metrics import cloud, coherence, lattice

ctx = api.context()
cfg, summ = ctx.cfg, ctx.summary
d = cfg.d_model

# %% [markdown]
# ## Token sets and frames

# %%
md(table(["set", "tokens", "what it is"],
         [["phantom", fmt(summ["sets"]["phantom"]),
           f"rows {fmt(cfg.live_vocab)}..{fmt(cfg.rows - 1)} of W: no tokenizer entry, never an input or a target"],
          ["natural dead", fmt(summ["sets"]["natural_dead"]),
           "live ids (other than the story separator) that never occur in the training token stream"],
          ["live", fmt(summ["sets"]["live"]), "ids that occur in the training stream (the reference)"]])
   + f"\n\nA frame is W stored as bf16 at one step; frame 0 is the initialisation and frame k follows "
   f"optimizer step k × {cfg.record_every}. Vectors are the frame's rows read as float32. This run has "
   f"{fmt(summ['provenance']['frames'])} frames; its weights were trained in `{summ['precision']}`.")

# %% [markdown]
# ## Thresholds

# %%
md(table(["regime (checked in this order)", "condition on the cells crossed per coordinate"],
         [[plots.REGIME_LABELS[r].split(" (")[0], c] for r, c in zip(plots.REGIMES, [
             "L1 = 0", "L1 = 1", "L∞ = 1 and L1 ≥ 2", f"L∞ ≥ 2 and L2 ≤ √d = {math.sqrt(d):.2f}",
             f"L2 > √d = {math.sqrt(d):.2f}"])])
   + f"\n\nwith d = {d}. **Verdict** over the last 10% of the frames: *{lattice.VERDICTS[0]}* when the "
   f"frozen fraction stays ≥ {lattice.FREEZE_LEVEL:.0%} at every frame; *{lattice.VERDICTS[1]}* when frozen + "
   f"face-adjacent + neighbour stays ≥ {lattice.FREEZE_LEVEL:.0%} but frozen does not; *{lattice.VERDICTS[2]}* "
   "otherwise. **Onsets**: the first step from which the frozen fraction stays at or above 50% (99%) at "
   "every later frame.\n\n"
   f"**Velocity trend**: ln v fitted against step over the last half of the frames; *accelerating* or "
   f"*decelerating* when p < {cloud.TREND_ALPHA} and the fitted change across the window is at least "
   f"{cloud.TREND_THRESHOLD:.0%}, else *constant*.\n\n"
   f"**Coherence** against chance: the spread of the mean pairwise cosine of n random unit vectors in "
   f"$\\mathbb{{R}}^d$ is $\\mathrm{{sd}} = \\sqrt{{2 / (n (n - 1) d)}}$; a value within {coherence.Z_LEVEL:g} sd of 0 reads *independent*, "
   f"above it *partly coherent*, and above it with a mean cosine ≥ {coherence.SWARM_COS} *swarm*. "
   f"Windowed coherence uses k = {summ['k']} steps.\n\n"
   f"**Cooling slope**: least squares of log10(speed) on log10(step) over the right half of the "
   f"log-step axis.\n\n"
   f"**Phantom vs natural dead**: two-sided Kolmogorov–Smirnov and Mann–Whitney U tests on per-token "
   f"speeds at {len(summ['compare'].get('tests', []))} fixed steps.")

# %% [markdown]
# ## Axes and units
#
# - **step**: optimizer steps; step 0 is the initialisation. Log step axes start at the first update,
#   since step 0 has no logarithm.
# - **embedding units**: coordinates of W as stored, the same units as the weights themselves (W is
#   initialised with a normal distribution of the standard deviation in the configuration). Distances
#   are Euclidean (L2) in $\mathbb{R}^d$.
# - **speed** of a token: |w_i(t) − w_i(t−1)|, the L2 length of its displacement between consecutive
#   frames; **cumulative displacement**: |w_i(t) − w_i(0)|.
# - **cells**: bf16 values in order; the number of cells a coordinate crossed is the difference of the
#   ordinals of its two bit patterns (+0 and −0 are one cell). **ULP**: the width of the bf16 cell at a
#   value, $2^{e - 134}$ for biased exponent $e$.
# - **quantiles** (10%, 50%, 90%) are over the tokens of a set at one step.
# - Log axes leave gaps where a value is exactly zero (for example a token unchanged in bf16).

# %% [markdown]
# ## Choices
#
# - The cooling fit, the velocity trend and the fimbulwinter window all look at the late part of
#   training (the right half of the log-step axis, the last half of the frames, the last 10% of the
#   frames): early training is dominated by warmup and is not what the questions ask about.
# - With fp32 master weights (`fp32`, `amp-bf16`) an unchanged bf16 frame means a token moved less than
#   one cell; only `pure-bf16` weights can truly freeze. Every verdict names the precision mode.
# - The comparison of phantom and natural dead tokens is reported with both tests, without correcting
#   the p-values for the number of steps tested; the table gives every value.
# - Numerics: each frame is read once, checksum verified, and each set's rows are swept by one
#   compiled pass (`duckling.analyze.fast`) that the tests hold to the plain definitions below (lattice
#   numbers exactly, sums of squares to rounding, since it sums them in float64). The gyration
#   tensor is summed in float32 from rows centred on the float64 centroid, and its top eigenpair
#   comes from LAPACK's ssyevr on that float32 tensor; the eigenvalues agree with a float64
#   decomposition to 1e-6 of the largest, a well-defined principal axis to 0.01 degrees.

# %% [markdown]
# ## Definitions

# %%
defs = summ.get("definitions", {})
if not defs:
    md("The Record holds no definitions.")
for name, entry in defs.items():
    series = ", ".join(f"`{m}`" for m in entry["series"])
    md(f"### {name.replace('_', ' ')}\n\n" + (f"*Series:* {series}\n\n" if series else "")
       + api.definition(entry["doc"]))

# %% [markdown]
# The frequency spectrum, the motion field and the forces' predictions are computed by these
# functions (each chapter shows them beside its numbers too):

# %%
for part, title in (("spectrum", "frequency spectrum"), ("shear", "motion field"), ("why", "why they move")):
    for name, entry in summ.get(part, {}).get("definitions", {}).items():
        md(f"### {name.replace('_', ' ')} ({title})\n\n" + api.definition(entry["doc"]))
