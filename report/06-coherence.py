# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Coherence
#
# Do the tokens of a set move as a swarm, all in one direction, or each its own way? The measure is the
# mean cosine similarity between the displacement vectors of all pairs of tokens in the set: 1 for a
# swarm moving as one, near 0 for independent directions. Single-step bf16 differences are quantised,
# so it is also taken over windows of k steps. Random directions are not exactly 0: the band expected
# from chance is drawn with the data.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, table

ctx = api.context()
s, summ = ctx.series, ctx.summary
co = summ["coherence"]
k = summ["k"]
sets = [S for S in plots.SETS if plots.present(s, S)]
md(table(["set", "mean coherence (1 step)", f"mean coherence ({k} steps)", "alignment with centroid",
          "random-direction spread"],
         [[plots.LABELS[S], fmt(co[S].get("mean")), fmt(co[S].get("mean_k")), fmt(co[S].get("alignment")),
           fmt(co[S].get("expected_random"))] for S in sets]))

# %%
# the readings are sentences: a list below the table, not a squeezed column in it
md("\n".join(f"- **{plots.LABELS[S]}**: {api.math(co[S].get('interpretation', 'n/a'))}" for S in sets))

# %%
show(plots.coherence_curves(s, summ), "fig-coherence")
