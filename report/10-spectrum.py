# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # The frequency spectrum
#
# Zero-count tokens are one end of a spectrum: many tokens occur in training only a handful of times.
# Here the live tokens are grouped by how often they occur in this run's training stream, from the
# natural dead (never) to the most frequent, with the phantom rows as the dead reference, and each group
# is measured at the last frame: how far it sits from the phantom cloud, how fast it still moves, how
# far it has travelled and whether it travelled with the dead. When does a token stop being dead?

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, table

ctx = api.context()
sp = ctx.summary.get("spectrum")
if sp is None:
    md(f"This Record has no frequency spectrum; analyse the run again with "
       f"`invoke analyze --run {ctx.run} --force`.")
    sp = {}
else:
    md(f"**{sp['answer']}**\n\n{sp.get('rare', '')}")

# %% [markdown]
# ## By train count

# %%
bins = [b for b in sp.get("bins", []) if b["n"]]


def name(b):
    """phantom, natural dead (0), seen 1, seen 2–3, ..."""
    return {"phantom": "phantom", "natural_dead": "natural dead (0)"}.get(b["name"], f"seen {plots.count_label(b)}")


if bins:
    steps = sp["frame_steps"]
    md(table(["set (times seen)", "tokens", "distance from the phantom centroid", "in phantom radii",
              "dead-to-live scale", "cosine with the phantom drift"],
             [[name(b), fmt(b["n"]), fmt(b["dist_phantom"]), fmt(b["dist_rel"]),
               fmt(b["scale"], 2), fmt(b["swarm_cos"])] for b in bins])
       + f"\n\nWhere each set sits at the last frame (step {fmt(steps[2])}). The phantom cloud's RMS radius is "
       f"{fmt(sp['phantom_rms_radius'])} {plots.UNITS}. The *dead-to-live scale* puts a set's median distance "
       "from the phantom centroid between the phantoms' own (0) and that of the most frequent tokens (1); a "
       f"set at {sp['join_level']:.0%} or more of the way counts as joined. The cosine is the mean over the "
       "set's tokens of the cosine between each token's displacement since initialisation and the phantom "
       "centroid's.")
    md(table(["set (times seen)", "drift", "cumulative displacement", "final speed per step", "frozen",
              "KS p vs phantom", "MW P(phantom faster)"],
             [[name(b), fmt(b["drift"]), fmt(b["cumulative"]), fmt(b["final_speed"]),
               f"{b['frozen']:.1%}", fmt(b["tests"]["ks_p"], 2) if b["tests"] else "—",
               fmt(b["tests"]["mw_auc"], 2) if b["tests"] else "—"] for b in bins])
       + f"\n\nHow each set moved: drift of its centroid and median displacement of its tokens since step "
       f"{fmt(steps[0])}, median speed over the last frame pair (from step {fmt(steps[1])}) and the share of "
       f"tokens that crossed no bf16 cell in it, in {plots.UNITS}. The Kolmogorov–Smirnov and Mann–Whitney "
       f"tests compare the phantoms' final speeds with each set's; p ≤ {sp['alpha']} tells them apart.")
else:
    md("There are no token sets to show.")

# %%
show(plots.by_train_count(sp), "fig-spectrum")

# %% [markdown]
# ## Definitions

# %%
for name, entry in sp.get("definitions", {}).items():
    md(f"### {name.replace('_', ' ')}\n\n" + api.definition(entry["doc"]))
