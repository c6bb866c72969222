# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Cooling
#
# How fast does each token move, step by step, and does that speed fall off as training goes on? A
# power law $\mathrm{speed} \propto \mathrm{step}^{\,\mathrm{slope}}$ is a straight line on log-log axes; its slope is the cooling exponent.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, step, table

ctx = api.context()
s, summ = ctx.series, ctx.summary
sets = [S for S in plots.SETS if plots.present(s, S)]
cool = summ["cooling"]
md(table(["set", "late slope", "R²", "fitted from", "median speed at step " + fmt(int(s["steps"][1])),
          f"at step {fmt(int(s['steps'][-1]))}"],
         [[plots.LABELS[S], fmt(cool[S].get("slope")), fmt(cool[S].get("r2")), step(cool[S].get("start_step")),
           fmt(s[f"{S}/speed_q50"][1]), fmt(s[f"{S}/speed_q50"][-1])] for S in sets]))

# %%
life = summ["lifecycle"]
md(f"The phantom tokens start cooling at **{step(life.get('cooling_start'))}**. {life['sentence']}")

# %% [markdown]
# ## Cooling curves

# %%
show(plots.speed_curves(s, summ), "fig-cooling")

# %% [markdown]
# ## Cumulative displacement

# %%
md(table(["set", "median distance from init at the end", "10%", "90%"],
         [[plots.LABELS[S], fmt(s[f"{S}/cum_q50"][-1]), fmt(s[f"{S}/cum_q10"][-1]), fmt(s[f"{S}/cum_q90"][-1])]
          for S in sets]))

# %%
show(plots.cumulative(s), "fig-cumulative")
