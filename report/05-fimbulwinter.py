# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # The fimbulwinter test
#
# Between two frames every coordinate of a token either stays in its bf16 cell or crosses to another.
# Counting cells crossed sorts each token, at each step, into one of five regimes, from *frozen* (no
# cell crossed) through *face-adjacent*, *neighbour* and *multi-cell* to *teleporting*. Classic
# fimbulwinter is everyone ending frozen; *cold, not frozen* is ending in eternal jitter between
# neighbouring cells. @fig-regimes follows the regimes through training.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, step, table

ctx = api.context()
s, summ = ctx.series, ctx.summary
fw = summ["fimbulwinter"]
sets = [S for S in plots.SETS if plots.present(s, S)]
meaning = next((fw[S]["meaning"] for S in sets if S in fw), "")
md(f"Precision mode **`{summ['precision']}`**. {meaning}")

# %%
window = next((fw[S] for S in sets if S in fw), {})
md(table(["set", "verdict", "frozen ≥ 50% from", "frozen ≥ 99% from", "lowest frozen fraction in the window",
          "lowest cold fraction in the window"],
         [[plots.LABELS[S], f"**{fw[S]['verdict']}**", step(fw[S].get("onset_50")), step(fw[S].get("onset_99")),
           fmt(fw[S].get("min_frozen")), fmt(fw[S].get("min_cold"))] for S in sets if S in fw])
   + f"\n\nThe verdict window is the last {fmt(window.get('window_frames'))} frames (from "
   f"{step(window.get('window_start_step'))}). *Cold* counts frozen, face-adjacent and neighbour tokens together.")

# %% [markdown]
# ## Regimes over time

# %%
show(plots.regime_shares(s, summ), "fig-regimes")

# %% [markdown]
# ## Cells and ULPs
#
# The bf16 lattice is logarithmic: cells are fine near zero and coarse far from it. A coordinate that
# changes sign steps through very many cells (from +0.5 to −0.5 is 32,256 cells), so a token with one
# zero-crossing coordinate counts as *teleporting* even if it barely moved. The local-ULP view measures
# each move in units of the cell width where the coordinate was, which has no such artefact; the
# zero-crossing rate says how often the artefact can occur.

# %%
zc = {S: s[f"{S}/zero_cross_frac"][-1] for S in sets}
md("Fraction of coordinates that changed sign in the last step: "
   + ", ".join(f"{plots.LABELS[S]} {fmt(v)}" for S, v in zc.items()) + ". Median token's largest move in "
   "the last step: " + ", ".join(f"{plots.LABELS[S]} {fmt(s[f'{S}/ulp_q50'][-1])} ULP" for S in sets) + ".")

# %%
show(plots.lattice_views(s, summ, "phantom"), "fig-lattice-phantom")

# %%
show(plots.lattice_views(s, summ, "natural_dead"), "fig-lattice-natural-dead")
