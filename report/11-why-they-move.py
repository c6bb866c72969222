# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Why they move
#
# A row of W that is never an input and never a target is moved by two things only: the softmax, whose
# gradient on the row is the probability-weighted mean of the final hidden states, g_i = (1/N) Σ_n p_ni h_n,
# and weight decay. AdamW turns the gradient into the step −lr·a with a = m / (√v + ε), and a coordinate
# keeps its bf16 value when that step is under half its ULP. Training logged these forces for every step
# and every token set (the forces log); this chapter holds them against what the movie shows: where the
# cloud goes, how fast, and when it freezes.

# %%
from duckling.book import api, plots
from duckling.book.api import fmt, md, show, step, table

ctx = api.context()
why = ctx.summary.get("why") or {
    "available": False,
    "answers": dict.fromkeys(("direction", "speed", "freezing"),
                             f"This Record holds no forces comparison; redo it with `invoke analyze --run {ctx.run} "
                             "--force`.")}
ans = why["answers"]
sets = [S for S in plots.PAIR if S in why.get("sets", {})]
md(f"**Direction.** {ans['direction']}\n\n**Speed.** {ans['speed']}\n\n**Freezing.** {ans['freezing']}")

# %% [markdown]
# ## Direction
#
# The centroid's displacement between two frames is held against the Adam step the forces log for the
# steps between them, −Σ lr(t)·a, and that step against the mean final hidden state h.

# %%
show(plots.why_direction(why), "fig-why-direction")

# %%
if sets:
    rows = []
    for S in sets:
        r = why["sets"][S]["direction"]
        for key, what in (("velocity_step", "Δc with −lr·a"), ("step_hidden", "−lr·a with h"),
                          ("grad_hidden", "g with h"), ("velocity_hidden", "Δc with h")):
            rows.append([plots.LABELS[S] if key == "velocity_step" else "", what, f"{r[key]['all']:.3f}",
                         f"{r[key]['early']:.3f}", f"{r[key]['late']:.3f}"])
    md(table(["set", "cosine of", "median", "first half", "second half"], rows)
       + "\n\nMedians over frame pairs; the halves split the run at half its last step.")

# %% [markdown]
# ## Speed
#
# A row moved by its Adam step alone moves lr(t)·|a_i| per step; over a set that is lr(t)·√d·RMS(a) in
# the RMS. If the movie's median speed follows it, cooling is the learning-rate schedule (and the size of
# Adam's normalised step), not something the cloud does by itself.

# %%
show(plots.why_speed(why), "fig-why-speed")

# %%
if sets:
    tol = why["tolerance"]
    rows = []
    for S in sets:
        r, c = why["sets"][S]["speed"], why["sets"][S]["speed"]["clear"]
        rows.append([plots.LABELS[S], f"{r['median']:.3f} ({r['q10']:.3f}–{r['q90']:.3f})",
                     f"{100 * r['within']:.0f}%", fmt(c["n"]), fmt(c["median"]),
                     f"{100 * c['within']:.0f}%" if c["n"] else "n/a", fmt(r["last"])])
    md(table(["set", "ratio: median (10–90%)", f"within {tol:.0%}", "clear pairs", "their median",
              f"their share within {tol:.0%}", "last pair"], rows)
       + "\n\nRatio: the movie's median speed over lr(t)·√d·RMS(a), per frame pair. *Clear pairs*: frame pairs "
       "with under 1% of the set's coordinates predicted frozen, so the step spans many bf16 cells.")

# %% [markdown]
# ## Freezing
#
# The forces log counts, at every step, the coordinates whose update is under half their bf16 ULP. In
# pure-bf16 such an update rounds away; with fp32 master weights the master moves but may stay inside its
# bf16 cell, so the frame does not change. A row counts as frozen in the movie only when all d coordinates
# kept their cell, which, taking them as independent, the forces predict with probability p^d.

# %%
show(plots.why_freezing(why), "fig-why-freezing")

# %%
if sets:
    rows = []
    for S in sets:
        r = why["sets"][S]["freezing"]
        rows.append([plots.LABELS[S], *(f"{step(r['predicted_rows'][k])} / {step(r['observed'][k])}"
                                        for k in ("onset_50", "onset_99")),
                     step(r["predicted_coords"]["onset_99"]), f"{r['predicted_verdict']} / {r['observed_verdict']}"])
    md(table(["set", "50% onset: predicted / seen", "99% onset: predicted / seen", "99% of coordinates",
              "verdict: predicted / the movie's"], rows)
       + f"\n\nPrecision mode `{why['precision']}`. Onsets: the first step from which the fraction stays at "
       "or above the level through the end (as in the fimbulwinter test).")

# %% [markdown]
# ## The forces on every set
#
# The forces log also covers the live tokens, binned by how often they occur in the train stream. A token
# that is a target is pulled towards the hidden states that predict it, so its gradient need not point
# along h.

# %%
forces = why.get("forces", {})
if forces:
    md(table(["set", "tokens", "cos(g, h)", "cos(−lr·a, h)", "RMS(a)", "weight-decay share",
              "frozen coordinates, last pair"],
             [[plots.LABELS.get(S, S.replace("_", " ")), fmt(r["size"]), f"{r['cos_grad_hidden']['all']:.3f}",
               f"{r['cos_step_hidden']['all']:.3f}", fmt(r["adam_rms"]), fmt(r["decay_share"]),
               fmt(r["frozen_coords_last"])] for S, r in forces.items()])
       + "\n\nMedians over frame pairs. *seen_a-b*: live tokens that occur a to b times in the train stream.")
else:
    md(ans["direction"])

# %% [markdown]
# ## Definitions

# %%
md("\n\n".join(f"**{name}**\n\n{api.definition(d['doc'])}" for name, d in why.get("definitions", {}).items()))
