# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Phantom vs natural dead
#
# Phantom rows have no tokenizer entry; natural dead tokens have one but never occur in the training
# stream. Neither is ever an input or a target, so in a tied model both are moved only through the
# softmax and by weight decay. Do they behave alike?

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, table

ctx = api.context()
s, summ = ctx.series, ctx.summary
comp = summ["compare"]
n_dead = summ["sets"]["natural_dead"]
md(f"**{comp['answer']}**")

# %%
if plots.present(s, "natural_dead"):
    md(f"{fmt(summ['sets']['phantom'])} phantom and {fmt(n_dead)} natural dead tokens. The angle between the "
       f"two centroids' drift directions is **{fmt(comp.get('drift_angle_deg'))}°** (0° is the same direction, "
       "90° unrelated).")
else:
    md(f"There are {plots.EMPTY['natural_dead']}, so the phantom tokens have no natural counterpart here; "
       "the figures show the phantom tokens alone.")

# %% [markdown]
# ## Side by side

# %%
show(plots.pair_metrics(s, summ), "fig-pair-metrics")

# %%
show(plots.regime_shares(s, summ, sets=plots.PAIR), "fig-pair-regimes")

# %% [markdown]
# ## Speed distributions at fixed steps
#
# At fixed steps the per-token speeds of the two sets are compared with two-sample tests:
# Kolmogorov–Smirnov (any difference in distribution) and Mann–Whitney U (a shift in location).

# %%
tests = [t for t in comp.get("tests", []) if t.get("n_b")]
md(table(["step", "phantom n", "natural dead n", "median speed phantom", "natural dead", "KS statistic", "KS p",
          "MW P(phantom faster)", "MW p"],
         [[fmt(t["step"]), fmt(t["n_a"]), fmt(t["n_b"]), fmt(t["median_a"]), fmt(t["median_b"]), fmt(t["ks_stat"]),
           fmt(t["ks_p"], 2), fmt(t["mw_auc"]), fmt(t["mw_p"], 2)] for t in tests])
   + "\n\n*MW P(phantom faster)* is U / (n_phantom n_natural dead): the chance that a random phantom token moves "
   "faster than a random natural dead one (0.5 when neither is)."
   if tests else "No tests: there are no natural dead tokens to compare with.")

# %%
show(plots.speed_distributions(s, summ), "fig-speed-distributions")
