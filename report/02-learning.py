# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Does it learn?
#
# Dead tokens of a model that learned nothing would say little about training. So first: is this a
# working language model? The bar is the validation loss against two lines: the plateau the old model
# never got below, and the unigram entropy of the corpus, the loss of a model that knows token
# frequencies but ignores context (@fig-loss).

# %%
from duckling.book import api, plots
from duckling.book.api import escape, fmt, md, show, table

ctx = api.context()
L = ctx.summary["learning"]
md(f"**{L['answer']}**")

# %%
md(table(["", "nats per token"],
         [["final validation loss", fmt(L["final_val_loss"], 4)],
          ["best validation loss", fmt(L["best_val_loss"], 4)],
          ["unigram entropy (context-free floor)", fmt(L["unigram_entropy"], 4)],
          ["old plateau", fmt(L["plateau"], 4)],
          ["final validation bits per byte", fmt(L["final_val_bpb"], 4) + " bits/byte"]]))

# %% [markdown]
# ## Loss

# %%
show(plots.loss_curves(ctx.metrics, ctx.evals, L), "fig-loss")

# %% [markdown]
# ## Optimizer

# %%
show(plots.optimizer(ctx.metrics), "fig-optimizer")

# %% [markdown]
# ## Samples
#
# Continuations of fixed prompts by the final model, greedy (always the most likely next token) and
# sampled (seeded, so the same run gives the same text). The prompt is in bold.

# %%
if not ctx.samples:
    md("No samples were recorded for this run.")
for s in ctx.samples:
    md(f"> *greedy:* **{escape(s['prompt'])}** {escape(s['greedy'])}\n>\n"
       f"> *sampled:* **{escape(s['prompt'])}** {escape(s['sampled'])}")
