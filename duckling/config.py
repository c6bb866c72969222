"""One config object for a whole run: every study parameter, its profiles, its budget.

A run is named. `resolve()` builds its config from a profile plus overrides, or reads the one
saved in `runs/<run>/config.json`; only a stage that runs writes that file (pipeline.run_stage,
under the run's lock), and a run's saved config changes only with --force.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from duckling.errors import DucklingError
from duckling.io import atomic_write_text, fingerprint
from duckling.metrics import lattice

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
    compile: bool = False  # torch.compile the model's forward for the training steps
    graph: str = "auto"  # auto (on with CUDA) | on | off: the step as one CUDA graph, replayed (train/graph.py)
    threads: int = 0  # torch CPU threads, 0 = torch's default

    # recording, evaluation, checkpoints
    record_every: int = 1
    log_forces: bool = True  # runs/<run>/forces.npy: the forces on each token set, every step (duckling/train/forces.py)
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
        """One folder per vocabulary shape: runs of other sizes never share (or break) a tokenizer."""
        return self.root_dir / "data" / "tokenizer" / f"live{self.live_vocab}-rows{self.rows}"

    @property
    def dead_mask_path(self) -> Path:
        return self.tokenizer_dir / "dead_mask.safetensors"

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
    def from_dict(cls, d: dict, where: str = "config") -> Config:
        """A Config from saved or built values, each checked against its field's type."""
        defaults = cls()
        values = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v, want = d[f.name], type(getattr(defaults, f.name))
            ok = (isinstance(v, bool) if want is bool else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else
                  isinstance(v, list) and all(isinstance(x, str) for x in v) if want is list else
                  isinstance(v, want))
            if not ok:
                raise DucklingError(f"{where}: {f.name} is {v!r} ({type(v).__name__}), expected "
                                    f"{'a list of str' if want is list else want.__name__}")
            values[f.name] = float(v) if want is float else v
        return cls(**values)

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
PRECISIONS = ("auto", *lattice.PRECISIONS)  # auto: amp-bf16 on CUDA, fp32 on CPU
GRAPH = ("auto", "on", "off")  # on without CUDA: the same fixed-buffer step, run without capture (tests)
FREE = ("threads", "checkpoint_every")  # no stage's outputs depend on these: they may change on a run
AFTER_CORPUS = ("train", "analyze", "report")  # stages that need an existing run


def default_root() -> str:
    """Where runs, data, movies and the book's output live: DUCKLING_ROOT, else the current folder."""
    return os.environ.get("DUCKLING_ROOT", ".")


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


def parse_fraction(raw) -> float | None:
    """--fraction as typed: a finite number above 0 (None when not given)."""
    if raw is None:
        return None
    try:
        f = float(raw)
    except (TypeError, ValueError):
        raise DucklingError(f"--fraction {raw}: expected a number, e.g. --fraction 0.1") from None
    if not (math.isfinite(f) and f > 0):
        raise DucklingError(f"--fraction {raw}: the budget fraction must be a finite number above 0")
    return f


def build(profile: str, run: str | None = None, fraction: float | None = None,
          overrides: dict | None = None, root: str | None = None) -> Config:
    if profile not in PROFILES:
        raise DucklingError(f"--profile {profile}: unknown profile; choose one of {', '.join(PROFILES)}")
    values = dict(PROFILES[profile])
    fraction = parse_fraction(fraction)
    if fraction is not None:
        values["fraction"] = fraction
    values.update(overrides or {})
    if run is None:
        run = profile if fraction is None else f"{profile}-f{fraction:g}"
    values["run"], values["profile"] = run, profile
    values["root"] = root or default_root()
    cfg = Config.from_dict(values)
    validate(cfg, "--set" if overrides else "")
    return cfg


# fields that must be whole numbers of at least 1 (0 where the comment in Config gives 0 a meaning)
_POSITIVE = ("rows", "live_vocab", "n_layer", "d_model", "n_head", "d_ff", "ctx", "batch_size", "record_every",
             "shard_frames", "eval_every", "eval_batches", "checkpoint_every", "coherence_window", "test_steps",
             "val_tokens")
_NON_NEGATIVE = ("max_steps", "warmup_steps", "threads", "sample_tokens")


def validate(cfg: Config, where: str = "") -> None:
    """Refuse a config no stage can run, before any work starts; `where` names its file or options."""
    def refuse(msg):
        raise DucklingError(f"{where} {msg}" if where == "--set" else f"{where}: {msg}" if where else msg)

    for n in _POSITIVE + _NON_NEGATIVE:  # first, so the checks below may divide by them
        if getattr(cfg, n) < (n in _POSITIVE):
            refuse(f"{n}={getattr(cfg, n)}: must be {int(n in _POSITIVE)} or more")
    finite = all(math.isfinite(getattr(cfg, f.name)) for f in fields(cfg) if isinstance(getattr(cfg, f.name), float))
    checks = [
        (finite, "every number must be finite (no inf or nan)"),
        (cfg.fraction > 0, f"fraction={cfg.fraction}: the budget must be above 0"),
        (cfg.lr > 0 and cfg.min_lr >= 0 and cfg.init_std > 0, "lr and init_std must be above 0, min_lr 0 or more"),
        (cfg.weight_decay >= 0 and cfg.grad_clip >= 0, "weight_decay and grad_clip must be 0 or more"),
        (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, f"beta1={cfg.beta1}, beta2={cfg.beta2}: each in [0, 1)"),
        (cfg.rows >= cfg.live_vocab > 256, f"rows={cfg.rows}, live_vocab={cfg.live_vocab}: need rows >= live_vocab > 256"),
        (cfg.d_model % cfg.n_head == 0, f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}"),
        (cfg.precision in PRECISIONS, f"precision={cfg.precision}: choose {', '.join(PRECISIONS)}"),
        (cfg.graph in GRAPH, f"graph={cfg.graph}: choose {', '.join(GRAPH)}"),
        (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"),
         f"device={cfg.device}: choose auto, cpu or cuda"),
        (cfg.ctx >= 2, f"ctx={cfg.ctx}: must be 2 or more"),
        (cfg.run and "/" not in cfg.run and not cfg.run.startswith("."),
         f"run name {cfg.run!r} must be a plain folder name"),
    ]
    for ok, msg in checks:
        if not ok:
            refuse(msg)


def runs(root: str | None = None) -> list[str]:
    """The runs under root: folders of runs/ holding a config.json."""
    d = Path(root or default_root()) / "runs"
    return sorted(p.parent.name for p in d.glob("*/config.json")) if d.is_dir() else []


def load(run: str, root: str | None = None) -> Config:
    """The saved config of a run, checked exactly like a new one."""
    root = root or default_root()
    path = Path(root) / "runs" / run / "config.json"
    if not path.exists():
        known = ", ".join(runs(root)) or "none yet"
        raise DucklingError(f"--run {run}: no such run under {Path(root) / 'runs'} (runs: {known}); "
                            f"start it with `invoke all --run {run} --profile PROFILE`")
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict):
            raise ValueError(f"a JSON {type(saved).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DucklingError(f"{path}: unreadable run config ({str(e).splitlines()[0][:120]}); fix it, or "
                            f"delete the run with `invoke clean --run {run} --yes` and start again") from None
    cfg = Config.from_dict({**saved, "root": root}, where=str(path))
    validate(cfg, str(path))
    return cfg


def train_fingerprint(cfg: Config, corpus_sha: str, precision: str) -> str:
    """What a training's outputs depend on: the settings (less those that change only logs, samples
    or the analysis), the corpus and the resolved precision."""
    keys = {k: v for k, v in cfg.to_dict().items()
            if k not in ("root", "run", "threads", "compile", "graph", "eval_every", "eval_batches", "prompts",
                         "sample_tokens", "coherence_window", "test_steps", "checkpoint_every")}
    return fingerprint({"config": keys, "corpus": corpus_sha, "precision": precision})


def differences(saved: Config, cfg: Config) -> list[str]:
    """'name: saved -> new' for each field on which two configs of one run disagree (FREE ones aside)."""
    a, b = saved.to_dict(), cfg.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in ("root", *FREE) and a[k] != b[k]]


def hub_unreachable(timeout: float = 3.0) -> str:
    """'' when the hub's endpoint answers a TCP connect, else why not (HF_HUB_OFFLINE set, or the
    connect failed); keeps offline failures fast (hf_hub_download retries for ~25 s). Behind a
    proxy a direct connect says nothing, so there the hub counts as reachable."""
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no", "off"):
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return ""
    import socket

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return ""
    except OSError as e:
        return f"{host} unreachable ({e.strerror or e})"


def default_profile() -> str:
    """10pct (the study's plan) where the hub is reachable; the offline demo profile elsewhere."""
    if not hub_unreachable():
        return DEFAULT_PROFILE
    print(f"note: the Hugging Face hub is unreachable, so the default profile is 'demo' "
          f"(offline); pass --profile {DEFAULT_PROFILE} to insist")
    return "demo"


def resolve(profile: str | None = None, run: str | None = None, fraction=None,
            set_: list[str] | None = None, root: str | None = None, stage: str | None = None) -> Config:
    """The config a task runs with; writes nothing (the stage that runs saves it, see pipeline).

    An existing run: its saved config, with --fraction and --set on top (or, with --profile, that
    profile with them on top). A new run: the profile (without --profile: the run's own name if
    it is a profile, else `default_profile()`); stages after the corpus refuse a run that does
    not exist yet, at once, listing those that do.
    """
    overrides = parse_overrides(set_)
    fraction = parse_fraction(fraction)
    root = root or default_root()
    guess = profile
    if run is None:
        guess = profile or default_profile()
        run = guess if fraction is None else f"{guess}-f{fraction:g}"
    if (Path(root) / "runs" / run / "config.json").exists():
        saved = load(run, root)
        if profile is not None:
            return build(profile, run=run, fraction=fraction, overrides=overrides, root=root)
        values = {**saved.to_dict(), **overrides, **({"fraction": fraction} if fraction is not None else {})}
        cfg = Config.from_dict(values)
        validate(cfg, "--set")
        return cfg
    if stage in AFTER_CORPUS:
        load(run, root)  # raises: no such run, naming the ones there are
    if profile is None:
        profile = guess or (run if run in PROFILES else default_profile())
    return build(profile, run=run, fraction=fraction, overrides=overrides, root=root)
