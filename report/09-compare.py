# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Comparison of runs
#
# The runs named for this report, overlaid: how precision, budget or settings change the regimes, the
# cooling and the drift of the phantom and natural dead tokens.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, step, table

ctxs = [api.context(r) for r in api.runs()]
records = [(c.run, c.series, c.summary) for c in ctxs]
md(table(["run", "precision", "steps", "final val loss", "phantom verdict", "frozen ≥ 99% from",
          "phantom cooling slope", "phantom drift at the end"],
         [[c.run, f"`{c.summary['precision']}`", fmt(c.cfg.steps), fmt(c.summary["learning"]["final_val_loss"]),
           c.summary["fimbulwinter"].get("phantom", {}).get("verdict", "n/a"),
           step(c.summary["fimbulwinter"].get("phantom", {}).get("onset_99")),
           fmt(c.summary["cooling"]["phantom"].get("slope")), fmt(c.series["phantom/drift"][-1])] for c in ctxs]))

# %% [markdown]
# ## Regimes

# %%
show(plots.overlay_regimes(records, "phantom"), "fig-overlay-regimes")

# %% [markdown]
# ## Cooling

# %%
show(plots.overlay_cooling(records, "phantom"), "fig-overlay-cooling")

# %% [markdown]
# ## Drift

# %%
show(plots.overlay_drift(records), "fig-overlay-drift")
