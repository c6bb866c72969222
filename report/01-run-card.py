# %% [markdown]
# ---
# jupyter: python3
# ---
#
# # Run card
#
# What was run, on what, from which inputs, and how long each stage took.

# %%
import importlib.metadata
import platform

from duckling.book import api
from duckling.book.api import code, fmt, md, table

ctx = api.context()
cfg, summ, tr = ctx.cfg, ctx.summary, ctx.train
prov = summ["provenance"]
md(f"Run **{ctx.run}**, profile `{cfg.profile}`, seed {cfg.seed}.")

# %% [markdown]
# ## Model and budget

# %%
rows = [
    ["parameters", fmt(tr.get("n_params", cfg.n_params))],
    ["layers × d_model × heads × FFN", f"{cfg.n_layer} × {cfg.d_model} × {cfg.n_head} × {cfg.d_ff}"],
    ["context", fmt(cfg.ctx)],
    ["embedding rows (live + phantom)", f"{fmt(cfg.rows)} ({fmt(cfg.live_vocab)} + {fmt(cfg.rows - cfg.live_vocab)})"],
    ["input/output embedding", "tied" if cfg.tied else "untied"],
    ["batch", f"{cfg.batch_size} × {cfg.ctx} = {fmt(cfg.tokens_per_step)} tokens per step"],
    ["budget", (f"{fmt(cfg.fraction)} × 20 × N = {fmt(cfg.budget_tokens)} tokens"
                + (f" (overridden: max_steps = {cfg.max_steps})" if cfg.max_steps > 0 else ""))],
    ["steps", fmt(tr.get("steps", cfg.steps))],
    ["optimizer", (f"AdamW β = ({cfg.beta1}, {cfg.beta2}), lr {fmt(cfg.lr)} → {fmt(cfg.min_lr)}, "
                   f"weight decay {fmt(cfg.weight_decay)} ({'on' if cfg.decay_embeddings else 'off'} for W), "
                   f"clip {fmt(cfg.grad_clip)}")],
    ["frames recorded", f"{fmt(prov.get('frames'))} (initialisation, then every "
                        + ("step)" if cfg.record_every == 1 else f"{cfg.record_every} steps)")],
]
md(table(["", "value"], rows))

# %% [markdown]
# ## Device and precision

# %%
tps = ctx.metrics.get("tokens_per_s")
rows = [
    ["device", f"{tr.get('device', 'n/a')} ({tr.get('device_name', 'n/a')})"],
    ["precision", f"`{summ['precision']}`"],
    ["training throughput (median)", f"{fmt(float(sorted(tps)[len(tps) // 2]))} tokens/s" if tps is not None and len(tps) else "n/a"],
    ["training wall time (last session)", f"{fmt(tr.get('seconds_this_session'))} s"],
    ["resumed from step", fmt(tr.get("resumed_from", 0))],
]
md(table(["", "value"], rows))

# %% [markdown]
# ## Inputs and checksums

# %%
cm, tm = ctx.corpus_meta, ctx.tokenizer_meta
rows = [
    ["corpus source", cm.get("source", cfg.corpus_source)],
    ["train tokens / stories / bytes", f"{fmt(cm.get('train_tokens'))} / {fmt(cm.get('train_stories'))} / {fmt(cm.get('train_bytes'))}"],
    ["validation tokens / stories / bytes", f"{fmt(cm.get('val_tokens'))} / {fmt(cm.get('val_stories'))} / {fmt(cm.get('val_bytes'))}"],
    ["epochs over the source", fmt(cm.get("epochs"))],
    ["unigram entropy", f"{fmt(summ['learning']['unigram_entropy'])} nats"],
    ["tokenizer source", tm.get("source", cfg.tokenizer_source)],
    ["token sets", ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in summ["sets"].items())],
]
md(table(["", "value"], rows))

# %%
# a table of its own: a 64-digit hash beside a long label would run past the page's margin
md(table(["input", "sha256"], [[k, code(prov.get(f"{k}_sha256", "n/a"))] for k in ("corpus", "tokenizer", "movie")]))

# %% [markdown]
# ## Stage wall times

# %%
t = ctx.timings
md(table(["stage", "seconds"], [[k, fmt(v)] for k, v in t.items()]) if t else "No stage timings recorded.")

# %% [markdown]
# ## Software

# %%
def version(pkg):
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


rows = [["python", platform.python_version()], ["platform", platform.platform()],
        ["torch (training)", tr.get("torch", version("torch"))]]
rows += [[p, version(p)] for p in ("duckling", "numpy", "scipy", "safetensors", "tokenizers", "matplotlib")]
given = api.params()
rows += [["report renderer", given.get("renderer", "n/a")],
         ["image version", given.get("image") or "not in a Duckling image"]]
md(table(["", "version"], rows))

# %% [markdown]
# ## Resolved configuration
#
# Every field of the run's configuration, as saved in `runs/<run>/config.json`.

# %%
conf = summ.get("config") or cfg.to_dict()
md(table(["field", "value"], [[k, code(v)] for k, v in conf.items() if k != "derived"]))
