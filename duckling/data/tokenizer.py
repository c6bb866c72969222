"""The tokenizer stage: GPT-2's byte-level BPE cut to `live_vocab` ids.

Ids 0..live_vocab-2 are GPT-2's own ids (256 byte tokens + the first live_vocab-257 merges);
id live_vocab-1 is <|endoftext|>. BPE applies merges in rank order, so keeping a prefix of the
merges is a valid tokenizer that still encodes any text with ids < live_vocab. Rows
live_vocab..rows-1 of the embedding are phantom: they get no entry here, only the dead mask.

GPT-2's table comes from the first source that works: a local folder, the Hugging Face hub,
or the gpt2.tiktoken asset in the openai-whisper sdist on PyPI. Every source is checked by
sha256 and all of them give a byte-identical tokenizer.json.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from duckling.config import Config, hub_unreachable
from duckling.errors import DucklingError
from duckling.io import atomic_path, fingerprint, read_json, sha256_bytes, sha256_file, up_to_date, write_json

EOT = "<|endoftext|>"
N_BYTES = 256
SOURCES = ("local", "hub", "whisper")
HUB_REPO = "gpt2"
WHISPER_PIN = "openai-whisper==20250625"
WHISPER_ASSET = "whisper/assets/gpt2.tiktoken"

# sha256 of the files as published; merges.txt is hashed without its optional '#version' line
VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256 = "ac33235097fe06d4a8fff0feac994644809e6eb6ab70669e1e9fd40ae032428e"
TIKTOKEN_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# sha256 of table_bytes(): the whole GPT-2 table (50,256 tokens, 50,000 merges), and the part
# kept for a given live_vocab; computed once from the reference vocab.json/merges.txt
GPT2_TABLE_SHA256 = "480f51c217fdcdecdcca1ae74221cc32c8c2e8b210bdf37eb91a05c330af34a6"
TABLE_SHA256 = {8000: "89bb9b297ffb0de618ca558bf215ae5dbe57929b2ce60c5039396ae94e021db3"}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map; its order is the order of ids 0..255."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()


# ---- the table: vocab (token -> id) and merges (in rank order) ----------------------------------
def truncated_table(vocab: dict[str, int], merges: list[tuple[str, str]], live_vocab: int):
    """The tokens for ids 0..live_vocab-2 and the merges that make them, checked for consistency."""
    n_merges = live_vocab - 1 - N_BYTES
    if n_merges < 0 or n_merges > len(merges):
        raise DucklingError(f"live_vocab={live_vocab}: GPT-2 has only {N_BYTES + len(merges) + 1} ids")
    by_id = {i: t for t, i in vocab.items()}
    tokens = [by_id.get(i) for i in range(live_vocab - 1)]
    if None in tokens:
        raise DucklingError(f"vocabulary has no token for id {tokens.index(None)}")
    if set(tokens[:N_BYTES]) != set(BYTE_ENCODER.values()):
        raise DucklingError("vocabulary ids 0..255 are not GPT-2's 256 byte tokens")
    kept = [tuple(m) for m in merges[:n_merges]]
    for k, (a, b) in enumerate(kept):
        i = N_BYTES + k
        if tokens[i] != a + b or vocab.get(a, i) >= i or vocab.get(b, i) >= i:
            raise DucklingError(f"merge {k} ({a} {b}) does not make id {i} ({tokens[i]}) from lower ids")
    return tokens, kept


def table_bytes(tokens: list[str], merges: list[tuple[str, str]]) -> bytes:
    """Canonical serialisation of a table, for its checksum."""
    return json.dumps({"tokens": tokens, "merges": [f"{a} {b}" for a, b in merges]},
                      ensure_ascii=False, separators=(",", ":")).encode()


def check_table(vocab: dict[str, int], merges: list[tuple[str, str]], live_vocab: int):
    """Verify a source against the known GPT-2 checksums; return the truncated table."""
    tokens, kept = truncated_table(vocab, merges, live_vocab)
    if len(merges) >= 50_000:
        full = truncated_table(vocab, merges[:50_000], N_BYTES + 50_000 + 1)
        if sha256_bytes(table_bytes(*full)) != GPT2_TABLE_SHA256:
            raise DucklingError("the table differs from GPT-2's (table checksum mismatch)")
    want = TABLE_SHA256.get(live_vocab)
    if want and sha256_bytes(table_bytes(tokens, kept)) != want:
        raise DucklingError(f"the first {live_vocab - 1} ids differ from GPT-2's (table checksum mismatch)")
    return tokens, kept


def tokenizer_from_table(tokens: list[str], merges: list[tuple[str, str]]):
    """A tokenizers.Tokenizer for ids 0..len(tokens)-1 plus <|endoftext|> = len(tokens)."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    vocab = {t: i for i, t in enumerate(tokens)}
    vocab[EOT] = len(tokens)
    tok = Tokenizer(BPE(vocab=vocab, merges=list(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(EOT, special=True)])
    return tok


def truncate(vocab: dict[str, int], merges: list[tuple[str, str]], live_vocab: int = 8000):
    """GPT-2 (vocab, merges) -> the tokenizer with live_vocab ids (the last one <|endoftext|>)."""
    return tokenizer_from_table(*truncated_table(vocab, merges, live_vocab))


# ---- readers for the three file layouts -----------------------------------------------------------
def _merges_sha256(data: bytes) -> str:
    if data.startswith(b"#version"):
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return sha256_bytes(data)


def from_vocab_merges(vocab_path: str | os.PathLike, merges_path: str | os.PathLike, verify: bool = True):
    """GPT-2's vocab.json + merges.txt (with or without a '#version' header)."""
    vocab_path, merges_path = Path(vocab_path), Path(merges_path)
    vdata, mdata = vocab_path.read_bytes(), merges_path.read_bytes()
    if verify:
        for path, got, want in ((vocab_path, sha256_bytes(vdata), VOCAB_SHA256),
                                (merges_path, _merges_sha256(mdata), MERGES_SHA256)):
            if got != want:
                raise DucklingError(f"{path}: sha256 {got[:12]}... is not GPT-2's {want[:12]}... "
                                    f"(corrupted or not GPT-2's file)")
    try:
        vocab = json.loads(vdata)
    except json.JSONDecodeError as e:
        raise DucklingError(f"{vocab_path}: not JSON ({e})") from None
    merges = []
    for line in mdata.decode("utf-8").splitlines():
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise DucklingError(f"{merges_path}: bad merge line {line!r}")
        merges.append((parts[0], parts[1]))
    return vocab, merges


def from_tokenizer_json(path: str | os.PathLike):
    """A Hugging Face tokenizer.json with a BPE model (merges as 'a b' strings or [a, b] pairs)."""
    path = Path(path)
    try:
        model = json.loads(path.read_bytes())["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DucklingError(f"{path}: not a tokenizers tokenizer.json ({e})") from None
    if model.get("type") != "BPE":
        raise DucklingError(f"{path}: model type {model.get('type')!r}, expected BPE")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    if any(len(m) != 2 for m in merges):
        raise DucklingError(f"{path}: a merge is not a pair")
    return dict(model["vocab"]), merges


def merge_pair(token: bytes, ranks: dict[bytes, int], rank: int) -> tuple[bytes, bytes]:
    """The merge that made `token`: BPE on its bytes with ranks < rank until two parts remain."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            raise DucklingError(f"tiktoken rank {rank}: token {token!r} cannot be built from lower ranks")
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise DucklingError(f"tiktoken rank {rank}: token {token!r} is a single byte")
    return parts[0], parts[1]


def from_tiktoken(path: str | os.PathLike):
    """tiktoken's gpt2.tiktoken (base64 token, rank per line); merges recovered from the ranks."""
    path = Path(path)
    ranks = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            b64, rank = line.split()
            ranks[base64.b64decode(b64, validate=True)] = int(rank)
        except ValueError:
            raise DucklingError(f"{path}:{n}: expected 'BASE64 RANK'") from None
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    if [r for _, r in by_rank] != list(range(len(by_rank))):
        raise DucklingError(f"{path}: ranks are not 0..{len(by_rank) - 1}, each once")

    def text(b: bytes) -> str:
        return "".join(BYTE_ENCODER[x] for x in b)

    vocab = {text(t): r for t, r in by_rank}
    merges = [tuple(map(text, merge_pair(t, ranks, r))) for t, r in by_rank[N_BYTES:]]
    return vocab, merges


# ---- sources ----------------------------------------------------------------------------------
def _local(cfg: Config):
    folder = cfg.tokenizer_path or os.environ.get("DUCKLING_GPT2_DIR", "")
    if not folder:
        raise DucklingError("no folder given (tokenizer_path or DUCKLING_GPT2_DIR)")
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise DucklingError(f"{d} is not a folder")
    if (d / "vocab.json").exists() and (d / "merges.txt").exists():
        files = [d / "vocab.json", d / "merges.txt"]
        table = from_vocab_merges(*files)
    elif (d / "tokenizer.json").exists():
        files = [d / "tokenizer.json"]
        table = from_tokenizer_json(files[0])
    elif (d / "gpt2.tiktoken").exists():
        files = [d / "gpt2.tiktoken"]
        if sha256_file(files[0]) != TIKTOKEN_SHA256:
            raise DucklingError(f"{files[0]}: sha256 is not gpt2.tiktoken's (corrupted or another encoding)")
        table = from_tiktoken(files[0])
    else:
        raise DucklingError(f"{d} has none of vocab.json+merges.txt, tokenizer.json, gpt2.tiktoken")
    return table, f"local {' + '.join(f.name for f in files)} in {d}", files


def _hub(cfg: Config):
    from huggingface_hub import hf_hub_download

    def fetch(local_only: bool):
        return [Path(hf_hub_download(HUB_REPO, name, local_files_only=local_only, etag_timeout=5))
                for name in ("vocab.json", "merges.txt")]

    try:
        files = fetch(local_only=True)  # the hub library's cache answers without the network
    except Exception:  # noqa: BLE001 (any failure here just means: not cached)
        why = hub_unreachable()
        if why:
            raise DucklingError(why) from None
        try:
            files = fetch(local_only=False)
        except Exception as e:  # noqa: BLE001 (whatever the hub raises, the next source is tried)
            raise DucklingError(f"download failed ({type(e).__name__}: {e})") from None
    return from_vocab_merges(*files), f"hub {HUB_REPO} vocab.json + merges.txt", files


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "duckling"


def fetch_whisper_tiktoken(timeout: float = 300) -> Path:
    """gpt2.tiktoken from the pinned openai-whisper sdist on PyPI, cached and sha256-checked."""
    cached = cache_dir() / "gpt2.tiktoken"
    if cached.exists() and sha256_file(cached) == TIKTOKEN_SHA256:
        return cached
    with tempfile.TemporaryDirectory(prefix="duckling-whisper-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", WHISPER_PIN, "-d", tmp]
        try:
            res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DucklingError(f"pip download {WHISPER_PIN} took over {timeout:g} s") from None
        if res.returncode != 0:
            lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit status {res.returncode}"
            raise DucklingError(f"pip download {WHISPER_PIN} failed ({why})")
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if not sdists:
            raise DucklingError(f"pip download {WHISPER_PIN} gave no source tarball")
        with tarfile.open(sdists[0]) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("/" + WHISPER_ASSET)), None)
            if member is None:
                raise DucklingError(f"{sdists[0].name} has no {WHISPER_ASSET}")
            data = tar.extractfile(member).read()
    if sha256_bytes(data) != TIKTOKEN_SHA256:
        raise DucklingError(f"{WHISPER_ASSET} in {WHISPER_PIN}: sha256 mismatch")
    with atomic_path(cached) as tmp:
        tmp.write_bytes(data)
    return cached


def _whisper(cfg: Config):
    path = fetch_whisper_tiktoken()
    return from_tiktoken(path), f"whisper {WHISPER_PIN} {WHISPER_ASSET}", [path]


_READERS = {"local": _local, "hub": _hub, "whisper": _whisper}


def find_table(cfg: Config):
    """(tokens, merges, source, input files) from the first source that passes every check."""
    if cfg.tokenizer_source not in ("auto", *SOURCES):
        raise DucklingError(f"tokenizer_source={cfg.tokenizer_source}: choose auto, {', '.join(SOURCES)}")
    order = SOURCES if cfg.tokenizer_source == "auto" else (cfg.tokenizer_source,)
    failures = []
    for name in order:
        files = []
        try:
            (vocab, merges), source, files = _READERS[name](cfg)
            tokens, kept = check_table(vocab, merges, cfg.live_vocab)
            return tokens, kept, source, files
        except (DucklingError, OSError, UnicodeDecodeError) as e:
            why = " ".join(str(e).split())  # one line, whatever the cause said
            where = " + ".join(str(f) for f in files)  # set only when the files read but failed a check
            failures.append(f"{name}: {where + ': ' if where else ''}{why}")
            given = name != "local" or cfg.tokenizer_path or os.environ.get("DUCKLING_GPT2_DIR")
            if name != order[-1] and given:
                print(f"tokenizer: source {name} not used ({why})")
    raise DucklingError(f"no GPT-2 tokenizer source worked (tried {'; '.join(failures)}); supply one with "
                        f"--set tokenizer_path=DIR or DUCKLING_GPT2_DIR=DIR (a folder with GPT-2's "
                        f"vocab.json+merges.txt)")


# ---- the stage ----------------------------------------------------------------------------------
def _fingerprint(cfg: Config) -> str:
    return fingerprint(cfg.subset("live_vocab", "rows"))


def _shown(cfg: Config, path: Path) -> str:
    try:
        return str(path.relative_to(cfg.root_dir))
    except ValueError:
        return str(path)


def build(cfg: Config, force: bool = False) -> dict:
    """Write tokenizer.json, meta.json and the dead mask into cfg.tokenizer_dir
    (data/tokenizer/live<live_vocab>-rows<rows>/); skip when up to date."""
    tok_path, meta_path = cfg.tokenizer_dir / "tokenizer.json", cfg.tokenizer_dir / "meta.json"
    fp = _fingerprint(cfg)
    if not force and up_to_date(meta_path, fp, tok_path, cfg.dead_mask_path):
        print("tokenizer: up to date, skipped (use --force to rebuild)")
        return read_json(meta_path)

    tokens, merges, source, files = find_table(cfg)
    tok = tokenizer_from_table(tokens, merges)
    data = tok.to_str(pretty=True).encode()
    sep = cfg.separator_id
    if tok.token_to_id(EOT) != sep or tok.get_vocab_size() != cfg.live_vocab:
        raise DucklingError(f"built tokenizer has {tok.get_vocab_size()} ids, {EOT}={tok.token_to_id(EOT)}")
    with atomic_path(tok_path) as tmp:
        tmp.write_bytes(data)

    from safetensors.numpy import save_file

    mask = dead_mask(cfg.live_vocab, cfg.rows)
    with atomic_path(cfg.dead_mask_path) as tmp:
        save_file({"dead_mask": mask}, str(tmp))

    meta = {
        "source": source,
        "input_sha256": {f.name: sha256_file(f) for f in files},
        "table_sha256": sha256_bytes(table_bytes(tokens, merges)),
        "tokenizer_sha256": sha256_bytes(data),
        "live_vocab": cfg.live_vocab,
        "rows": cfg.rows,
        "phantom_rows": cfg.rows - cfg.live_vocab,
        "separator_id": sep,
        "fingerprint": fp,
    }
    write_json(meta_path, meta)  # last, so a killed build never looks finished
    print(f"tokenizer: {cfg.live_vocab} live ids (GPT-2 0..{sep - 1} + {EOT}={sep}), "
          f"{cfg.rows - cfg.live_vocab} phantom rows, from {source} -> {_shown(cfg, tok_path)}")
    return meta


def dead_mask(live_vocab: int, rows: int) -> np.ndarray:
    """True for the phantom rows live_vocab..rows-1."""
    mask = np.zeros(rows, dtype=bool)
    mask[live_vocab:] = True
    return mask


def load(cfg: Config):
    from tokenizers import Tokenizer

    path = cfg.tokenizer_dir / "tokenizer.json"
    if not path.exists():
        raise DucklingError(f"{path}: no tokenizer yet; build it with `invoke tokenizer`")
    return Tokenizer.from_file(str(path))


def load_dead_mask(cfg: Config) -> np.ndarray:
    from safetensors.numpy import load_file

    path = cfg.dead_mask_path
    if not path.exists():
        raise DucklingError(f"{path}: no dead mask yet; build it with `invoke tokenizer`")
    mask = load_file(str(path))["dead_mask"]
    if mask.dtype != bool or mask.shape != (cfg.rows,):
        raise DucklingError(f"{path}: dead_mask is {mask.dtype} {mask.shape}, expected bool ({cfg.rows},); "
                            f"rebuild with `invoke tokenizer --force`")
    return mask


def load_meta(cfg: Config) -> dict:
    path = cfg.tokenizer_dir / "meta.json"
    if not path.exists():
        raise DucklingError(f"{path}: no tokenizer yet; build it with `invoke tokenizer`")
    return read_json(path)
