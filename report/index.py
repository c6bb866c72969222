# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Summary {.unnumbered}
#
# Duckling trains a small GPT on children's stories with an embedding matrix W that has more rows than
# the tokenizer has ids. The extra rows, the *phantom* tokens, never occur as input or target; neither do
# the *natural dead* tokens, live ids that the corpus never uses. W is filmed in bf16 as training goes
# and the film is analysed into the Record. Every number and verdict below is computed from this run's
# Record and training logs.

# %%
from duckling.book import api
from duckling.book.api import fmt, md, step, table

ctx = api.context()
summ = ctx.summary
learn, comp, life = summ["learning"], summ["compare"], summ["lifecycle"]
fw = summ["fimbulwinter"].get("phantom", {"verdict": "n/a"})
md(f"Run **{ctx.run}**: {fmt(ctx.cfg.n_params)} parameters, {fmt(ctx.cfg.steps)} steps, "
   f"precision `{summ['precision']}`, {fmt(summ['sets']['phantom'])} phantom, "
   f"{fmt(summ['sets']['natural_dead'])} natural dead and {fmt(summ['sets']['live'])} live tokens, "
   f"{fmt(summ['provenance']['frames'])} frames (W at initialisation, then after "
   + ("every step)." if ctx.cfg.record_every == 1 else f"every {ctx.cfg.record_every} steps)."))

# %% [markdown]
# ## The three questions {.unnumbered}

# %%
md(f"1. **Does it learn?** {learn['answer']}\n"
   f"2. **Do phantom tokens behave like natural dead tokens?** {comp['answer']}\n"
   f"3. **The lifecycle of the phantom tokens.** {life['sentence']} "
   f"Fimbulwinter verdict: **{fw['verdict']}** ({summ['precision']}).")

# %%
md(table(["phase", "begins at"],
         [["birth (initialisation)", step(life.get("birth"))],
          ["drift", step(life.get("drift_start"))],
          ["cooling", step(life.get("cooling_start"))],
          ["freezing", step(life.get("freeze_start"))]]))

# %% [markdown]
# ## How to read this book {.unnumbered}
#
# The run card records what was run and where the inputs came from. *Does it learn?* checks that the
# model is a working language model, without which its dead tokens mean little. *The cloud*, *Cooling*,
# *The fimbulwinter test* and *Coherence* follow the phantom tokens (with the live tokens as a
# reference) from the cloud as a whole down to single bf16 cells. *Phantom vs natural dead* sets the
# two kinds of never-seen token side by side, and *Methods* defines every quantity and threshold.
