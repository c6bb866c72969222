"""The train stage: one pass over the budget's tokens, filming W after every optimizer step.

Outputs in runs/<run>/: metrics.csv (one row per step), evals.csv (validation loss and bits per
byte every eval_every steps), checkpoint.pt (every checkpoint_every steps and at the end),
samples.json and train.json (the summary; its presence means the stage is done). The movie goes
to movies/<run>/ through duckling.movie. A killed run resumes from its last checkpoint and ends
bit-identical (on CPU) to one that never stopped: the data order is a pure function of the seed,
and everything after the checkpoint (movie shards, metric rows) is rewritten.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import functools
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from duckling import config, movie
from duckling.config import Config
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError
from duckling.io import atomic_path, read_csv, read_json, write_json
from duckling.train import forces, graph
from duckling.train.batches import Batches, val_batches
from duckling.train.checkpoint import load_checkpoint, save_checkpoint
from duckling.train.model import GPT, phantom_mass_from_grad

METRIC_FIELDS = ["step", "loss", "lr", "grad_norm", "phantom_mass", "tokens_per_s"]
EVAL_FIELDS = ["step", "val_loss", "val_bpb"]
TRAIN_FILES = ("checkpoint.pt", "train.json", "samples.json", "metrics.csv", "evals.csv", "forces.npy")  # + movie
LOG_EVERY = 25  # steps between host syncs for metric rows (each step still gets its own row)
QUEUE_FRAMES_CUDA = 32  # 82 MB pinned: GPU steps are far shorter, so the writer gets more slack there


# ---- pieces -----------------------------------------------------------------------------------
def lr_at(cfg: Config, step: int) -> float:
    """Linear warmup to lr, then cosine decay to min_lr at the last step (step counts from 0)."""
    warmup = cfg.warmup_steps or max(1, round(0.05 * cfg.steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(cfg: Config, model: GPT, device: str) -> torch.optim.AdamW:
    """Fused AdamW; matrices decay, biases and LayerNorm gains do not, W decays if decay_embeddings.
    Capturable where the step is a CUDA graph (its step counts and lr stay on the device)."""
    decay, no_decay = [], []
    for p in model.parameters():
        is_w = p is model.wte.weight or (model.lm_head is not None and p is model.lm_head.weight)
        (decay if p.dim() == 2 and (cfg.decay_embeddings or not is_w) else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True,
                             capturable=torch.device(device).type == "cuda" and graph.wanted(cfg.graph, device))


def autocast(device: str, precision: str):
    # bf16 compute only on CUDA; on CPU a bf16 matmul is ~90x slower than fp32 (STUDY.md). No cast
    # cache: each weight is cast once a step anyway, and a CUDA graph must not keep cached casts
    if device.startswith("cuda") and precision in ("amp-bf16", "pure-bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


def _stash_phantom_mass(out: torch.Tensor, live_vocab: int, grad: torch.Tensor) -> None:
    """Gradient hook: record the phantom softmax mass, leave the gradient as it is (returns None)."""
    out.copy_(phantom_mass_from_grad(grad, live_vocab))


@torch.no_grad()
def round_to_bf16_(model: torch.nn.Module) -> None:
    """pure-bf16: store every weight as its nearest-even bf16 value (sub-half-ULP updates vanish)."""
    for p in model.parameters():
        p.copy_(p.to(torch.bfloat16))


@torch.no_grad()
def evaluate(model: GPT, batches: list[torch.Tensor], device: str, precision: str) -> float:
    model.eval()
    total, n = torch.zeros((), dtype=torch.float64, device=device), 0  # one host sync, at the end
    for xy in batches:
        xy = xy.to(device)
        with autocast(device, precision):
            logits = model(xy[:, :-1])
        total += F.cross_entropy(logits.float().flatten(0, 1), xy[:, 1:].flatten(), reduction="sum").double()
        n += xy[:, 1:].numel()
    model.train()
    return total.item() / n


def samples(cfg: Config, model: GPT, device: str) -> list[dict]:
    """Greedy and seeded-sampled continuations of the fixed prompts."""
    if not cfg.prompts:
        return []
    tok = tokenizer.load(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = []
    model.eval()
    for prompt in cfg.prompts:
        ids = torch.tensor([tok.encode(prompt).ids], device=device)
        row = {"prompt": prompt}
        for mode, temp in (("greedy", 0.0), ("sampled", 0.8)):
            with autocast(device, cfg.resolved_precision()):
                full = model.generate(ids, cfg.sample_tokens, temperature=temp, top_k=40, generator=gen,
                                      stop_id=cfg.separator_id)
            row[mode] = tok.decode(full[0, ids.shape[1]:].tolist(), skip_special_tokens=True)
        out.append(row)
    model.train()
    return out


# ---- run folder ---------------------------------------------------------------------------------
class CsvLog:
    """Append-only CSV whose rows after a given step can be dropped (on resume)."""

    def __init__(self, path: Path, fields: list[str], keep_through: int | None):
        self.path, self.fields = path, fields
        rows = []
        if keep_through is not None and path.exists():
            with open(path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_through]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(rows)
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f)

    def write(self, rows: list[list]) -> None:
        self.w.writerows(rows)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def check_movie(cfg: Config, fp: str, frames: int) -> None:
    """Refuse a movie that is not exactly this training's: every frame present, every shard its own."""
    fix = f"re-record it with `invoke train --run {cfg.run} --force`"
    for name in ("W",) if cfg.tied else ("W", "Wout"):
        movie.check_complete(cfg.movie_dir, name, fp, np.arange(frames) * cfg.record_every, fix)


def _clear(cfg: Config) -> None:
    """Delete what an earlier training of this run left (its files and movie)."""
    for name in TRAIN_FILES:
        (cfg.run_dir / name).unlink(missing_ok=True)
    movie.truncate(cfg.movie_dir, -1)


# ---- the pieces of a run ------------------------------------------------------------------------
def restore_or_clear(cfg: Config, model: GPT, opt, fp: str, force: bool, device: str) -> int:
    """The step to start from: the checkpoint's, when one of this training exists; else 0, with every
    output of an earlier try removed. Frames and metric rows after the start are dropped."""
    ckpt = None if force else load_checkpoint(cfg.run_dir / "checkpoint.pt", device, cfg.run)
    if ckpt is None or ckpt["fingerprint"] != fp:
        _clear(cfg)
        return 0
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng_cpu"])
    print(f"train: resuming {cfg.run} from step {ckpt['step']} ({cfg.run_dir / 'checkpoint.pt'})")
    movie.truncate(cfg.movie_dir, ckpt["step"])
    return ckpt["step"]


def open_movies(cfg: Config, model: GPT, start: int, fp: str, precision: str) -> dict:
    """A MovieWriter per filmed matrix (W; and Wout when untied), frame 0 written on a fresh start."""
    mats = {"W": lambda: model.W} if cfg.tied else {"W": lambda: model.W, "Wout": lambda: model.W_out}
    n_frames = (cfg.steps - start) // cfg.record_every + (start == 0)
    movie.check_disk(cfg.movie_dir, len(mats) * movie.estimate_bytes(cfg.rows, cfg.d_model, n_frames))
    meta = {"run": cfg.run, "precision": precision, "record_every": cfg.record_every, "fingerprint": fp,
            "live_vocab": cfg.live_vocab}
    queue = QUEUE_FRAMES_CUDA if model.W.is_cuda else 8  # frames in flight to the writer thread
    writers = {k: (movie.MovieWriter(cfg.movie_dir, cfg.rows, cfg.d_model, cfg.shard_frames, name=k, meta=meta,
                                     queue_frames=queue), mat) for k, mat in mats.items()}
    if start == 0:
        film(writers, 0)
    return writers


def film(writers: dict, step: int) -> None:
    for w, mat in writers.values():
        w.write(step, mat().detach())


class StepLog:
    """metrics.csv rows: one per step, held on the device and written every LOG_EVERY steps (one sync)."""

    def __init__(self, cfg: Config, start: int, device: str, bar):
        self.cfg, self.bar = cfg, bar
        keep = start if start else -1
        self.csv = CsvLog(cfg.run_dir / "metrics.csv", METRIC_FIELDS, keep)
        self.evals = CsvLog(cfg.run_dir / "evals.csv", EVAL_FIELDS, keep)
        self.stats = torch.zeros(LOG_EVERY, 3, device=device)  # loss, grad norm, phantom mass
        self.pending: list[tuple[int, float]] = []
        self.t_window, self.last_loss = time.perf_counter(), float("nan")

    def slot(self) -> torch.Tensor:
        return self.stats[len(self.pending)]

    def add(self, step: int, lr: float, loss: torch.Tensor, gnorm: torch.Tensor) -> None:
        row = self.slot()
        row[0], row[1] = loss.detach(), gnorm
        self.pending.append((step, lr))

    def flush(self) -> None:
        if not self.pending:
            return
        now = time.perf_counter()
        tps = len(self.pending) * self.cfg.tokens_per_step / max(now - self.t_window, 1e-9)
        vals = self.stats[: len(self.pending)].tolist()
        self.csv.write([[s, repr(v[0]), repr(lr), repr(v[1]), repr(v[2]), round(tps, 1)]
                        for (s, lr), v in zip(self.pending, vals)])
        self.pending.clear()
        self.t_window, self.last_loss = now, vals[-1][0]
        self.bar.set_postfix(loss=f"{self.last_loss:.3f}", tok_s=f"{tps:,.0f}")

    def close(self) -> None:
        self.csv.close()
        self.evals.close()


def train_step(cfg: Config, model: GPT, fwd, opt, xy: tuple, lr, slot: torch.Tensor, device: str,
               precision: str, pull: forces.Forces | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step (forward through `fwd`: the model, or its compiled self); the phantom
    softmax mass lands in slot[2], the forces on the token sets in `pull.cur`. `lr` is a float, or
    the 0-d tensor of a CUDA graph (graph.py). Returns (loss, grad norm), on the device."""
    for g in opt.param_groups:
        g["lr"] = lr
    x, y = xy
    with autocast(device, precision):
        logits = fwd(x).float()
    # the driving force on phantom rows, read off dL/dlogits instead of a second softmax
    logits.register_hook(functools.partial(_stash_phantom_mass, slot[2], cfg.live_vocab))
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if pull is not None:
        pull.before_step(model.W_out.grad, model.W_out)
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
    opt.step()
    if pull is not None:
        pull.after_step(model.W_out, opt, lr, cfg.weight_decay if cfg.decay_embeddings else 0.0)
    if precision == "pure-bf16":
        round_to_bf16_(model)
    return loss, gnorm


def stepper(cfg: Config, model: GPT, fwd, opt, batches: Batches, device: str, precision: str, pull):
    """(step, lr, slot) -> (loss, grad norm): the step captured as a CUDA graph (graph.py), or the plain one."""
    body = functools.partial(train_step, cfg, model, fwd, opt, device=device, precision=precision, pull=pull)
    if graph.wanted(cfg.graph, device):
        return graph.GraphStep(body, batches, opt, device)
    return lambda step, lr, slot: body(batches.get(step), lr, slot)


def deterministic_cuda() -> None:
    """Same seed, same GPU -> same bytes. Strict mode, since with warn_only flash attention's backward
    keeps its atomic adds (it only warns); cuBLAS gets a fixed workspace. The NaN fill of new memory
    that strict mode adds is switched off: no step reads memory it has not written, and each new
    tensor would cost a fill kernel. (The CPU kernels used here are deterministic already.)"""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def checkpoint(cfg: Config, model: GPT, opt, writers: dict, step: int, fp: str, pull) -> None:
    """The movie and the forces on disk up to `step`, then the state to resume from it."""
    for w, _ in writers.values():
        w.flush()
    if pull is not None:
        pull.sync()
    save_checkpoint(cfg.run_dir / "checkpoint.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                                    "step": step, "rng_cpu": torch.get_rng_state(), "fingerprint": fp})


def disk_full(cfg: Config, e: OSError, step: int, saved: int, n_movies: int) -> DucklingError:
    need = movie.estimate_bytes(cfg.rows, cfg.d_model, (cfg.steps - saved) // cfg.record_every,
                                cfg.shard_frames) * n_movies
    return DucklingError(f"{e.filename or cfg.movie_dir}: the disk is full (training stopped at step {step}; "
                         f"the movie after the last checkpoint, step {saved}, needs about {movie.gb(need)}); "
                         f"free space and run `invoke train --run {cfg.run}` to resume from there")


def finish(cfg: Config, model: GPT, fp: str, device: str, precision: str, start: int, wall: float,
           last_loss: float, record: bool, unigram: float) -> dict:
    """Samples, the summary train.json (its presence marks the stage done) and the one-line report."""
    evals = read_csv(cfg.run_dir / "evals.csv")
    write_json(cfg.run_dir / "samples.json", samples(cfg, model, device))
    summary = {
        "fingerprint": fp, "run": cfg.run, "steps": cfg.steps, "n_params": cfg.n_params,
        "device": device, "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "precision": precision, "final_loss": last_loss, "final_val_loss": float(evals["val_loss"][-1]),
        "best_val_loss": float(evals["val_loss"].min()), "final_val_bpb": float(evals["val_bpb"][-1]),
        "unigram_entropy_nats": unigram, "seconds_this_session": round(wall, 2),
        "resumed_from": start, "frames": (cfg.steps // cfg.record_every + 1) if record else 0,
        "cuda_graph": graph.wanted(cfg.graph, device) and device.startswith("cuda"), "torch": torch.__version__,
    }
    write_json(cfg.run_dir / "train.json", summary)
    print(f"train: {cfg.steps} steps of {cfg.n_params:,} params on {device} ({precision}) in {wall:.1f}s; "
          f"val loss {summary['final_val_loss']:.3f} (unigram floor {unigram:.3f}), "
          f"{summary['frames']} frames -> {cfg.movie_dir}")
    return summary


# ---- the stage ----------------------------------------------------------------------------------
def build_model(cfg: Config, device: str, precision: str) -> tuple[GPT, torch.optim.AdamW]:
    """The model, drawn from the seed (rounded to bf16 for pure-bf16), and its optimizer."""
    model = GPT(cfg).to(device)
    if precision == "pure-bf16":
        round_to_bf16_(model)
    return model, make_optimizer(cfg, model, device)


def close_all(files: list, failed: bool) -> None:
    """Close the writers and logs; after a failure, keep that failure's own error, not a closing one."""
    for f in files:
        with contextlib.suppress(Exception) if failed else contextlib.nullcontext():
            f.close()


def finished(cfg: Config, fp: str, record: bool) -> dict | None:
    """This training's summary when it has finished already (its movie checked), else None."""
    path = cfg.run_dir / "train.json"
    summary = read_json(path) if path.exists() else {}
    if summary.get("fingerprint") != fp:
        return None
    if record:
        check_movie(cfg, fp, summary["frames"])
    print(f"train: up to date, skipped ({path}; use --force to retrain)")
    return summary


def log_forces(cfg: Config, model: GPT, counts: np.ndarray, start: int, device: str) -> forces.Forces:
    """The forces log on the token sets by train count, fed by a hook on the final LayerNorm."""
    sets = corpus.count_sets(counts[: cfg.live_vocab], cfg.separator_id, tokenizer.load_dead_mask(cfg))
    pull = forces.Forces(cfg.run_dir, sets, cfg.rows, cfg.d_model, cfg.steps, start == 0, device, LOG_EVERY)
    model.ln_f.register_forward_hook(pull.hook)
    return pull


def run(cfg: Config, force: bool = False, progress: bool = True, record: bool = True, on_step=None) -> dict:
    """Train the run, recording W; resume from a checkpoint when one matches.

    `on_step(step)` is called after each optimizer step (benchmarks time the loop with it).
    """
    device, precision = cfg.resolved_device(), cfg.resolved_precision()
    cmeta = corpus.current_meta(cfg)
    fp = config.train_fingerprint(cfg, cmeta["sha256"], precision)
    done_before = None if force else finished(cfg, fp, record)
    if done_before is not None:
        return done_before
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if device.startswith("cuda"):
        deterministic_cuda()

    data = corpus.load(cfg)
    batches, vbatches = Batches(cfg, data["train"], device), val_batches(cfg, data["val"])
    bpb_scale = cmeta["val_tokens"] / (cmeta["val_bytes"] * math.log(2))  # nats/token -> bits/byte
    model, opt = build_model(cfg, device, precision)
    start = restore_or_clear(cfg, model, opt, fp, force, device)
    fwd = torch.compile(model) if cfg.compile else model  # training steps only; eval and samples stay eager
    pull = log_forces(cfg, model, data["counts"], start, device) if cfg.log_forces else None
    step_fn = stepper(cfg, model, fwd, opt, batches, device, precision, pull)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.run}", unit="step", disable=not progress)
    log, writers = StepLog(cfg, start, device, bar), {}
    t_start, failed, step, saved = time.perf_counter(), True, start, start
    try:
        writers = open_movies(cfg, model, start, fp, precision) if record else {}
        for step in range(start, cfg.steps):
            lr = lr_at(cfg, step)
            loss, gnorm = step_fn(step, lr, log.slot())
            done = step + 1
            log.add(done, lr, loss, gnorm)
            if pull is not None:
                pull.commit(done)
            if on_step is not None:
                on_step(done)
            if done % cfg.record_every == 0:
                film(writers, done)
            bar.update(1)
            is_eval = done % cfg.eval_every == 0 or done == cfg.steps
            is_ckpt = done % cfg.checkpoint_every == 0 or done == cfg.steps
            if len(log.pending) == LOG_EVERY or is_eval or is_ckpt:
                log.flush()
                if pull is not None:
                    pull.flush()
            if is_eval:
                vl = evaluate(model, vbatches, device, precision)
                log.evals.write([[done, repr(vl), repr(vl * bpb_scale)]])
            if is_ckpt:
                checkpoint(cfg, model, opt, writers, done, fp, pull)
                saved = done
        failed = False
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise disk_full(cfg, e, step, saved, len(writers)) from None
    finally:
        bar.close()
        close_all([w for w, _ in writers.values()] + [log] + ([pull] if pull else []), failed)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return finish(cfg, model, fp, device, precision, start, time.perf_counter() - t_start, log.last_loss, record,
                  cmeta["unigram_entropy_nats"])
