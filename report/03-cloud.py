# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # The cloud
#
# The phantom tokens as one body: where their centroid goes, how fast, how large the cloud is and what
# shape it has. The natural dead tokens and the live tokens (those that occur in training) are drawn
# beside them for reference, always in the same colours.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, table

ctx = api.context()
s, summ = ctx.series, ctx.summary
sets = [S for S in plots.SETS if plots.present(s, S)]
absent = [S for S in plots.SETS if S not in sets]
md(", ".join(f"{fmt(summ['sets'][S])} {plots.LABELS[S]}" for S in plots.SETS) + " tokens over "
   f"{fmt(int(s['steps'][-1]))} steps." + "".join(f" There are {plots.EMPTY[S]}." for S in absent))

# %% [markdown]
# ## Path of the centroid

# %%
show(plots.centroid_paths(s, summ), "fig-centroid-paths")

# %% [markdown]
# ## Drift and velocity

# %%
vt = summ["velocity_trend"]
md(table(["set", "drift at the end", "velocity at the end (per step)", "late trend", "slope of ln v per step", "p"],
         [[plots.LABELS[S], fmt(s[f"{S}/drift"][-1]), fmt(s[f"{S}/velocity"][-1]), vt[S]["trend"],
           fmt(vt[S].get("slope")), fmt(vt[S].get("p_value"), 2)] for S in sets]))

# %%
show(plots.drift_velocity(s, summ), "fig-drift-velocity")

# %% [markdown]
# ## The driving force
#
# Phantom rows never appear as inputs or targets. With tied embeddings they still sit in the output
# softmax: every step the model gives them some probability, and the gradient of the loss pushes them
# away from the hidden states in proportion to it.

# %%
cfg = ctx.cfg
md(f"This run's embeddings are **{'tied' if cfg.tied else 'untied'}**, and weight decay "
   + (f"of {fmt(cfg.weight_decay)} applies to W, pulling every row toward the origin."
      if cfg.decay_embeddings and cfg.weight_decay > 0 else "does not apply to W."))

# %%
show(plots.driving_force(ctx.metrics), "fig-driving-force")

# %% [markdown]
# ## Radius

# %%
md(table(["set", "RMS radius at init", "at the end", "median radius at init", "at the end"],
         [[plots.LABELS[S], fmt(s[f"{S}/rms_radius"][0]), fmt(s[f"{S}/rms_radius"][-1]),
           fmt(s[f"{S}/median_radius"][0]), fmt(s[f"{S}/median_radius"][-1])] for S in sets]))

# %%
show(plots.radius_curves(s), "fig-radius")

# %% [markdown]
# ## Shape

# %%
md(table(["set", "anisotropy at init", "at the end", "effective dimension at init", "at the end"],
         [[plots.LABELS[S], fmt(s[f"{S}/anisotropy"][0]), fmt(s[f"{S}/anisotropy"][-1]),
           fmt(s[f"{S}/effective_dim"][0]), fmt(s[f"{S}/effective_dim"][-1])] for S in sets])
   + f"\n\nThe embedding has d = {ctx.cfg.d_model} dimensions; a cloud of independent isotropic "
   "vectors has anisotropy near 1 and an effective dimension near d.")

# %%
show(plots.shape_curves(s, summ), "fig-shape")

# %% [markdown]
# ## Shearing
#
# Shape and the turn of the principal axis say whether a cloud is spherical or elongated and whether it
# twists; whether it shears needs its motion field. At log-spaced frame pairs, each set's displacements
# per step are fitted by least squares to a linear field about its centroid, Δw_i ≈ v + A (w_i − c). The
# trace of A is expansion (or contraction), its traceless symmetric part shear, its antisymmetric part
# rotation. A fit to many rows always finds some A, so each part is read against its expected size for
# a random walk with the set's own steps, drawn independently of position.

# %%
sh = summ.get("shear")
if sh is None:
    md(f"This Record has no motion field; analyse the run again with `invoke analyze --run {ctx.run} --force`.")
    sh = {}
else:
    md(f"**{api.math(sh['answer'])}**")
    fitted = [S for S in plots.SETS if S in sh["summary"]]
    md(table(["set", "frame pairs fitted", "median expansion rate per step", "expansion / baseline",
              "shear / baseline", "rotation / baseline"],
             [[plots.LABELS[S], fmt(sh["summary"][S]["shear"]["n"]), fmt(sh["summary"][S]["expansion"]["median"]),
               *(fmt(sh["summary"][S][p]["median_ratio"], 2) for p in ("expansion", "shear", "rotation"))]
              for S in fitted])
       + f"\n\nMedians over {fmt(len(sh['steps']))} frame pairs ending at steps {fmt(sh['steps'][0])} to "
       f"{fmt(sh['steps'][-1])}. A part exceeds a random walk when its median ratio to the baseline is at least "
       f"{fmt(sh['ratio_level'])}; a random walk gives about 1 for shear and rotation, and for the signed expansion "
       "about 0.67, the median size of a standard normal value.")

# %%
show(plots.expansion_shear_rotation(sh), "fig-shear")

# %%
md("\n\n".join(f"**{name.replace('_', ' ')}.** " + api.definition(e["doc"])
               for name, e in sh.get("definitions", {}).items()))
