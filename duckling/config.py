"""One config object for a whole run: every study parameter, its profiles, its budget.

A run is named. `resolve()` builds its config from a profile plus overrides, or reads the
one already written in `runs/<run>/config.json`; every stage after that reads the same file.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from duckling.errors import DucklingError
from duckling.io import atomic_write_text

CHINCHILLA_TOKENS_PER_PARAM = 20


@dataclass
class Config:
    run: str = "demo"
    profile: str = "demo"
    seed: int = 1337
    root: str = "."  # every path below is relative to this folder

    # tokenizer: GPT-2 byte-level BPE cut to live_vocab ids; rows >= live_vocab are phantom
    live_vocab: int = 8000
    rows: int = 10000
    tokenizer_source: str = "auto"  # auto | local | hub | whisper
    tokenizer_path: str = ""  # local folder with vocab.json+merges.txt, tokenizer.json or gpt2.tiktoken

    # corpus
    corpus_source: str = "synthetic"  # synthetic | tinystories | a local file path
    hub_dataset: str = "roneneldan/TinyStories"  # the `tinystories` source: a hub id or a local copy of it
    val_tokens: int = 65_536  # held-out tokens (whole stories) for validation loss
    allow_epochs: bool = False  # only with this may a small source be repeated to fill the budget

    # model (STUDY.md section 1)
    n_layer: int = 8
    d_model: int = 128
    n_head: int = 2
    d_ff: int = 512
    ctx: int = 512
    tied: bool = True
    init_std: float = 0.02

    # budget: tokens = fraction x 20 x N_params, steps = round(tokens / (batch x ctx))
    fraction: float = 0.01
    batch_size: int = 8
    max_steps: int = 0  # > 0 overrides the budget (tests, benchmarks)

    # optimiser
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 0  # 0: 5% of the steps
    weight_decay: float = 0.1
    decay_embeddings: bool = True  # whether weight decay applies to W
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping

    # precision and device
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (amp-bf16 on CUDA, fp32 on CPU) | fp32 | amp-bf16 | pure-bf16
    compile: bool = False
    threads: int = 0  # torch CPU threads, 0 = torch's default

    # recording, evaluation, checkpoints
    record_every: int = 1
    shard_frames: int = 128
    eval_every: int = 50
    eval_batches: int = 8
    checkpoint_every: int = 100
    sample_tokens: int = 64
    prompts: list[str] = field(
        default_factory=lambda: ["Once upon a time", "The little duck", "One day, a girl named Lily"]
    )

    # analysis
    coherence_window: int = 10  # k of the windowed coherence
    test_steps: int = 4  # number of fixed steps for the phantom-vs-natural two-sample tests

    # ---- derived values ----------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Exact parameter count of the model (model.py asserts it matches)."""
        d, f = self.d_model, self.d_ff
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
        emb = self.rows * d * (1 if self.tied else 2) + self.ctx * d
        return emb + self.n_layer * block + 2 * d

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.ctx

    @property
    def budget_tokens(self) -> int:
        return round(self.fraction * CHINCHILLA_TOKENS_PER_PARAM * self.n_params)

    @property
    def steps(self) -> int:
        if self.max_steps > 0:
            return self.max_steps
        return max(1, round(self.budget_tokens / self.tokens_per_step))

    @property
    def train_tokens(self) -> int:
        """Tokens the corpus must supply: each step's inputs once, plus the last target."""
        return self.steps * self.tokens_per_step + 1

    @property
    def separator_id(self) -> int:
        return self.live_vocab - 1

    # ---- paths -------------------------------------------------------------------------
    @property
    def root_dir(self) -> Path:
        return Path(self.root)

    @property
    def run_dir(self) -> Path:
        return self.root_dir / "runs" / self.run

    @property
    def tokenizer_dir(self) -> Path:
        return self.root_dir / "data" / "tokenizer"

    @property
    def dead_mask_path(self) -> Path:
        return self.root_dir / "data" / "dead_mask.safetensors"

    @property
    def corpus_dir(self) -> Path:
        return self.root_dir / "data" / "corpus" / self.run

    @property
    def movie_dir(self) -> Path:
        return self.root_dir / "movies" / self.run

    @property
    def record_dir(self) -> Path:
        return self.root_dir / "data" / "record" / self.run

    @property
    def report_dir(self) -> Path:
        return self.root_dir / "report" / "_output" / self.run

    # ---- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def derived(self) -> dict:
        return {"n_params": self.n_params, "budget_tokens": self.budget_tokens, "steps": self.steps,
                "tokens_per_step": self.tokens_per_step, "train_tokens": self.train_tokens}

    def subset(self, *names: str) -> dict:
        """The named fields, for a stage's fingerprint (only what that stage depends on)."""
        return {n: getattr(self, n) for n in names}

    def save(self) -> Path:
        path = self.run_dir / "config.json"
        atomic_write_text(path, json.dumps({**self.to_dict(), "derived": self.derived()}, indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        return "amp-bf16" if self.resolved_device() == "cuda" else "fp32"


# ---- profiles ------------------------------------------------------------------------------
_HUB = {"corpus_source": "tinystories", "val_tokens": 262_144, "eval_every": 100, "eval_batches": 16,
        "checkpoint_every": 250}
PROFILES: dict[str, dict] = {
    # tiny model, a few steps: the whole pipeline in well under a minute on 2 cores
    "smoke": {"n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64, "ctx": 64, "batch_size": 4,
              "max_steps": 24, "warmup_steps": 4, "lr": 3e-3, "val_tokens": 4096, "eval_every": 8,
              "eval_batches": 2, "checkpoint_every": 8, "shard_frames": 10, "sample_tokens": 16,
              "coherence_window": 4},
    # the full-size model at 1% of Chinchilla on the built-in offline corpus
    "demo": {"fraction": 0.01, "lr": 2e-3, "warmup_steps": 10, "eval_every": 25, "checkpoint_every": 50},
    "10pct": {**_HUB, "fraction": 0.10},
    "50pct": {**_HUB, "fraction": 0.50},
    "100pct": {**_HUB, "fraction": 1.00},
}
DEFAULT_PROFILE = "10pct"


def _parse_value(name: str, raw: str, current):
    """Turn an override string into the type of the field it sets."""
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, list):
            return [s for s in raw.split("|") if s]
        return raw
    except ValueError:
        raise DucklingError(f"--set {name}={raw}: expected a {type(current).__name__}") from None


def parse_overrides(pairs) -> dict:
    """['lr=3e-4', 'precision=pure-bf16'] -> typed dict, each name checked against Config."""
    defaults = Config()
    known = {f.name for f in fields(Config)}
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise DucklingError(f"--set {pair}: expected NAME=VALUE")
        name, raw = pair.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in known:
            raise DucklingError(f"--set {name}: no such config field (see duckling/config.py)")
        out[name] = _parse_value(name, raw.strip(), getattr(defaults, name))
    return out


def build(profile: str, run: str | None = None, fraction: float | None = None,
          overrides: dict | None = None, root: str | None = None) -> Config:
    if profile not in PROFILES:
        raise DucklingError(f"--profile {profile}: unknown profile; choose one of {', '.join(PROFILES)}")
    values = dict(PROFILES[profile])
    if fraction is not None:
        if not fraction > 0:
            raise DucklingError(f"--fraction {fraction}: the budget fraction must be above 0")
        values["fraction"] = float(fraction)
    values.update(overrides or {})
    if run is None:
        run = profile if fraction is None else f"{profile}-f{fraction:g}"
    values["run"], values["profile"] = run, profile
    values["root"] = root or os.environ.get("DUCKLING_ROOT", ".")
    cfg = Config.from_dict(values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    checks = [
        (cfg.fraction > 0, f"fraction={cfg.fraction}: the budget must be above 0"),
        (cfg.rows >= cfg.live_vocab > 256, f"rows={cfg.rows}, live_vocab={cfg.live_vocab}: need rows >= live_vocab > 256"),
        (cfg.d_model % cfg.n_head == 0, f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}"),
        (cfg.precision in ("auto", "fp32", "amp-bf16", "pure-bf16"),
         f"precision={cfg.precision}: choose auto, fp32, amp-bf16 or pure-bf16"),
        (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"),
         f"device={cfg.device}: choose auto, cpu or cuda"),
        (cfg.record_every >= 1, f"record_every={cfg.record_every}: must be 1 or more"),
        (cfg.batch_size >= 1 and cfg.ctx >= 2, "batch_size and ctx must be positive"),
        (cfg.run and "/" not in cfg.run, f"run name {cfg.run!r} must be a plain folder name"),
    ]
    for ok, msg in checks:
        if not ok:
            raise DucklingError(msg)


def load(run: str, root: str | None = None) -> Config:
    root = root or os.environ.get("DUCKLING_ROOT", ".")
    path = Path(root) / "runs" / run / "config.json"
    if not path.exists():
        raise DucklingError(f"{path}: no such run; start it with `invoke tokenizer --profile PROFILE --run {run}`")
    cfg = Config.from_dict(json.loads(path.read_text()))
    cfg.root = root
    return cfg


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers (and is not switched off with HF_HUB_OFFLINE)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def default_profile() -> str:
    """10pct (the study's plan) where the hub is reachable; the offline demo profile elsewhere."""
    if hub_reachable():
        return DEFAULT_PROFILE
    print(f"note: the Hugging Face hub is unreachable, so the default profile is 'demo' "
          f"(offline); pass --profile {DEFAULT_PROFILE} to insist")
    return "demo"


def resolve(profile: str | None = None, run: str | None = None, fraction: float | None = None,
            set_: list[str] | None = None, root: str | None = None, save: bool = True) -> Config:
    """The config a task runs with.

    With only --run (or nothing) and a saved config for that run: the saved one.
    Otherwise the profile with --fraction and --set on top, saved to the run folder. Without
    --profile: the run's own name if it is a profile, else `default_profile()`.
    """
    overrides = parse_overrides(set_)
    root = root or os.environ.get("DUCKLING_ROOT", ".")
    if profile is None and fraction is None and not overrides:
        name = run or default_profile()
        if (Path(root) / "runs" / name / "config.json").exists():
            return load(name, root)
        run = name
    if profile is None:
        profile = run if run in PROFILES else default_profile()
    cfg = build(profile, run=run, fraction=fraction, overrides=overrides, root=root)
    if save:
        cfg.save()
    return cfg
