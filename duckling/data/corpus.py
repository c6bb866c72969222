"""The corpus stage: stories -> one uint16 token stream for training and one for validation.

Stories are joined by the separator (`<|endoftext|>`, id live_vocab - 1): `story <sep> story <sep> ...`.
The train stream holds exactly the tokens the run's budget consumes (each used once), the
validation stream whole held-out stories. Per-id counts over the train stream find the natural
dead tokens; bytes of text give bits per byte (a story's UTF-8 bytes plus one byte per separator,
which stands for the story break).

Sources: `synthetic` (duckling.data.stories, offline), `tinystories` (the hub dataset through
`datasets`, streamed), or a local file: the dataset's own .txt layout (stories separated by
`<|endoftext|>` lines), JSONL or Parquet with a `text` column. A local file has one split, so
its first stories are held out for validation.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tqdm.auto import tqdm

from duckling.config import Config
from duckling.data import stories, tokenizer
from duckling.errors import DucklingError
from duckling.io import atomic_path, fingerprint, sha256_file, up_to_date, write_json

SEPARATOR = tokenizer.EOT
BATCH = 512  # stories per encode_batch call


# ---- sources --------------------------------------------------------------------------------
def _txt_stories(path: Path) -> Iterator[str]:
    buf: list[str] = []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            for line in f:
                if line.strip() == SEPARATOR:
                    if text := "".join(buf).strip():
                        yield text
                    buf = []
                else:
                    buf.append(line)
        except UnicodeDecodeError as e:
            raise DucklingError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); "
                                f"convert it to UTF-8") from None
    if text := "".join(buf).strip():
        yield text


def _dataset_stories(ds, where: str) -> Iterator[str]:
    cols = getattr(ds, "column_names", None) or list(getattr(ds, "features", None) or [])
    if cols and "text" not in cols:
        raise DucklingError(f"{where}: no `text` column (columns: {', '.join(cols)})")
    for i, row in enumerate(ds):
        if "text" not in row:
            raise DucklingError(f"{where}: no `text` column (columns: {', '.join(row)})")
        text = row["text"]
        if text is not None and not isinstance(text, str):
            raise DucklingError(f"{where}: column `text` holds {type(text).__name__} values (row {i}: "
                                f"{str(text)[:40]!r}), expected strings")
        if text := (text or "").strip():
            yield text


def _local_stories(path: Path) -> Iterator[str]:
    if not path.exists():
        raise DucklingError(f"{path}: no such corpus file; give an existing .txt, .jsonl or .parquet")
    if path.is_dir():
        raise DucklingError(f"{path}: a folder, not a corpus file; give one .txt, .jsonl or .parquet file")
    if path.is_file() and path.stat().st_size == 0:
        raise DucklingError(f"{path}: the corpus file is empty")
    suffix = path.suffix.lower()
    if suffix in (".txt", ".text"):
        yield from _txt_stories(path)
        return
    kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(suffix)
    if kind is None:
        raise DucklingError(f"{path}: unknown corpus format; use .txt (stories separated by "
                            f"{SEPARATOR} lines), .jsonl or .parquet with a `text` column")
    import datasets

    try:
        ds = datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)
        yield from _dataset_stories(ds, str(path))
    except DucklingError:
        raise
    except Exception as e:  # datasets' own parse errors are long; keep the first line
        raise DucklingError(f"{path}: cannot read as {kind}: {str(e).splitlines()[0][:200]}") from None


def _hub_stories(name: str, split: str) -> Iterator[str]:
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split, streaming=True)
        yield from _dataset_stories(ds, f"{name}[{split}]")
    except DucklingError:
        raise
    except Exception as e:
        raise DucklingError(f"corpus: cannot stream {name} ({split}) from the Hugging Face hub "
                            f"({type(e).__name__}); offline, use --profile demo or "
                            f"--set corpus_source=PATH to a local copy") from None


def split_sources(cfg: Config) -> tuple[Iterator[str], Iterator[str], str]:
    """(validation stories, train stories, description) for the configured source."""
    src = cfg.corpus_source
    if src == "synthetic":
        # separate seeds: validation stories are never training stories
        return stories.generate(cfg.seed + 1), stories.generate(cfg.seed), f"synthetic(seed={cfg.seed})"
    if src == "tinystories":
        return (_hub_stories(cfg.hub_dataset, "validation"), _hub_stories(cfg.hub_dataset, "train"),
                f"hub:{cfg.hub_dataset}")
    path = Path(src).expanduser()
    it = _local_stories(path)
    return it, it, f"file:{path}"  # one iterator: validation takes the first stories, train the rest


# ---- tokenisation ---------------------------------------------------------------------------
class _Stream:
    """Encodes stories in batches and appends `ids + [sep]` until a token target is reached."""

    def __init__(self, tok, sep: int, target: int, desc: str, progress: bool = True):
        self.tok, self.sep, self.target = tok, sep, target
        self.parts: list[np.ndarray] = []
        self.n_tokens = self.n_stories = self.n_bytes = 0
        self.leftover: list[str] = []  # stories read past the target, handed to the next stream
        self.bar = tqdm(total=target, desc=desc, unit="tok", unit_scale=True, disable=not progress)

    def feed(self, texts: list[str]) -> None:
        encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)
        for i, (text, enc) in enumerate(zip(texts, encode(texts, add_special_tokens=False))):
            if self.n_tokens >= self.target:
                self.leftover = texts[i:]
                break
            ids = np.asarray(enc.ids + [self.sep], dtype=np.uint16)
            self.parts.append(ids)
            self.n_tokens += len(ids)
            self.n_stories += 1
            self.n_bytes += len(text.encode("utf-8")) + 1
            self.bar.update(len(ids))

    def fill(self, source: Iterator[str]) -> bool:
        """Consume stories until the target; False if the source ran dry first."""
        while self.n_tokens < self.target:
            batch = list(itertools.islice(source, BATCH))
            if not batch:
                return False
            self.feed(batch)
        return True

    def done(self, exact: bool) -> np.ndarray:
        self.bar.close()
        out = np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint16)
        return out[: self.target] if exact else out


def _fingerprint(cfg: Config, tok_meta: dict) -> str:
    src = cfg.corpus_source
    src_id = src
    if src not in ("synthetic", "tinystories"):
        p = Path(src).expanduser()
        src_id = f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" if p.exists() else src
    elif src == "tinystories":
        src_id = f"hub:{cfg.hub_dataset}"
    return fingerprint({"source": src_id, "tokenizer": tok_meta.get("tokenizer_sha256"),
                        **cfg.subset("seed", "val_tokens", "allow_epochs", "train_tokens")})


def _fill(cfg: Config, tok, progress: bool) -> tuple[_Stream, _Stream, str, int]:
    """The val stream first (whole held-out stories), then the train stream to exactly the budget,
    repeating the source only when allow_epochs says so. Returns (val, train, source, epochs)."""
    sep = cfg.separator_id
    val_src, train_src, desc = split_sources(cfg)
    val = train = None
    try:  # the bars close before any error is printed, so it stands on a line of its own
        val = _Stream(tok, sep, cfg.val_tokens, "corpus val", progress)
        if not val.fill(val_src) and val.n_tokens == 0:
            raise DucklingError(f"{desc}: the source holds no stories")
        if train_src is val_src:
            train_src = itertools.chain(val.leftover, train_src)
        train = _Stream(tok, sep, cfg.train_tokens, "corpus train", progress)
        epochs = 1
        while not train.fill(train_src):
            if train.n_tokens == 0:
                raise DucklingError(
                    f"{desc}: all {val.n_stories:,} of its stories ({val.n_tokens:,} tokens) went to the "
                    f"validation hold-out, none is left to train on; stories in a .txt are separated by "
                    f"`{SEPARATOR}` lines and in .jsonl/.parquet are one per row")
            if not cfg.allow_epochs:
                raise DucklingError(
                    f"{desc}: holds {train.n_tokens:,} train tokens but the budget needs {cfg.train_tokens:,}; "
                    f"use a larger source, a smaller --fraction, or --set allow_epochs=true to repeat it")
            epochs += 1
            _, train_src, _ = split_sources(cfg)
            if cfg.corpus_source not in ("synthetic", "tinystories"):
                train_src = itertools.islice(train_src, val.n_stories, None)  # skip the held-out head
    finally:
        for st in (val, train):
            if st is not None:
                st.bar.close()
    return val, train, desc, epochs


def build(cfg: Config, force: bool = False, progress: bool = True) -> dict:
    """Tokenise the configured source into `data/corpus/<run>/tokens.safetensors` (+ meta.json)."""
    if cfg.train_tokens <= 1 or cfg.fraction <= 0:
        raise DucklingError(f"fraction={cfg.fraction}: the token budget must be above 0")
    tok = tokenizer.load(cfg)
    tok_meta = tokenizer.load_meta(cfg)
    out, meta_path = cfg.corpus_dir / "tokens.safetensors", cfg.corpus_dir / "meta.json"
    fp = _fingerprint(cfg, tok_meta)
    if not force and up_to_date(meta_path, fp, out):
        print(f"corpus: up to date, skipped ({out}; use --force to rebuild)")
        return json.loads(meta_path.read_text())

    sep = cfg.separator_id
    val, train, desc, epochs = _fill(cfg, tok, progress)
    train_ids, val_ids = train.done(exact=True), val.done(exact=False)

    counts = np.bincount(train_ids, minlength=cfg.live_vocab).astype(np.int64)
    if counts.size > cfg.live_vocab:
        raise DucklingError(f"corpus: token id {counts.size - 1} >= live_vocab {cfg.live_vocab}; "
                            f"rebuild the tokenizer with `invoke tokenizer --force`")
    with atomic_path(out) as tmp:
        # no metadata: safetensors writes a metadata dict in hash order, and the bytes must not vary
        save_file({"train": train_ids, "val": val_ids, "counts": counts}, str(tmp))
    n_dead = natural_dead(counts, sep).size
    meta = {
        "fingerprint": fp, "source": desc, "epochs": epochs, "separator_id": sep,
        "train_tokens": int(train_ids.size), "train_stories": train.n_stories, "train_bytes": train.n_bytes,
        "val_tokens": int(val_ids.size), "val_stories": val.n_stories, "val_bytes": val.n_bytes,
        "n_natural_dead": int(n_dead), "unigram_entropy_nats": unigram_entropy(counts),
        "tokenizer_sha256": tok_meta.get("tokenizer_sha256"), "sha256": sha256_file(out),
    }
    write_json(meta_path, meta)
    print(f"corpus: {meta['train_tokens']:,} train tokens ({train.n_stories:,} stories, {epochs} epoch"
          f"{'s' if epochs > 1 else ''}), {meta['val_tokens']:,} val tokens, {n_dead} natural "
          f"dead ids, unigram entropy {meta['unigram_entropy_nats']:.3f} nats -> {out}")
    return meta


def unigram_entropy(counts: np.ndarray) -> float:
    """H = -sum p log p (nats) of the train stream's token frequencies: the loss floor of a
    model that learned nothing about context."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def load(cfg: Config) -> dict[str, np.ndarray]:
    path = cfg.corpus_dir / "tokens.safetensors"
    if not path.exists():
        raise DucklingError(f"{path}: no corpus for run {cfg.run}; run `invoke corpus --run {cfg.run}` first")
    return load_file(str(path))


def load_meta(cfg: Config) -> dict:
    path = cfg.corpus_dir / "meta.json"
    if not path.exists():
        raise DucklingError(f"{path}: no corpus for run {cfg.run}; run `invoke corpus --run {cfg.run}` first")
    return json.loads(path.read_text())


def fingerprint_of(cfg: Config) -> str:
    """What the run's corpus must have been built from: its source, tokenizer and settings."""
    return _fingerprint(cfg, tokenizer.load_meta(cfg))


def current_meta(cfg: Config) -> dict:
    """The corpus meta, refusing a corpus built from other settings than the run's config now has."""
    meta = load_meta(cfg)
    if meta.get("fingerprint") != fingerprint_of(cfg):
        raise DucklingError(f"{cfg.corpus_dir}: built from another source, tokenizer or settings than run "
                            f"{cfg.run} has now; rebuild it with `invoke corpus --run {cfg.run}`")
    return meta


COUNT_BINS = ((1, 1), (2, 3), (4, 10), (11, 100), (101, 1000), (1001, None))  # train count, inclusive


def count_bins(counts: np.ndarray, separator_id: int) -> dict[str, np.ndarray]:
    """The live ids (separator aside) by their count in the train stream: seen_1, seen_2-3, ...,
    seen_1001+; the natural dead (count 0) are the bin below."""
    ids = np.arange(counts.size)
    out = {}
    for lo, hi in COUNT_BINS:
        name = f"seen_{lo}" if lo == hi else f"seen_{lo}+" if hi is None else f"seen_{lo}-{hi}"
        keep = (counts >= lo) & (True if hi is None else counts <= hi) & (ids != separator_id)
        out[name] = ids[keep]
    return out


def count_sets(counts: np.ndarray, separator_id: int, dead_mask: np.ndarray) -> dict[str, np.ndarray]:
    """The token sets by train count, rarest first: phantom (the rows `dead_mask` marks), natural_dead
    (count 0, natural_dead()), then count_bins()' seen_1 .. seen_1001+; `counts` are per live id."""
    return {"phantom": np.flatnonzero(dead_mask), "natural_dead": natural_dead(counts, separator_id),
            **count_bins(counts, separator_id)}


def natural_dead(counts: np.ndarray, separator_id: int) -> np.ndarray:
    """The natural dead tokens: live ids other than the separator that never occur in the train
    stream (`counts` are per live id)."""
    ids = np.flatnonzero(counts == 0)
    return ids[ids != separator_id]
