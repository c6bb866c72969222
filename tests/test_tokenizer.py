"""The truncated GPT-2 tokenizer: every id < live_vocab, exact round trips, agreement with
full GPT-2, identical output from every source, skip logic and one-line errors."""
import base64
import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duckling import config
from duckling.data import tokenizer as T
from duckling.errors import DucklingError
from duckling.io import read_json, sha256_file

LIVE, ROWS, SEP = 8000, 10000, 7999


def make_cfg(root, **overrides):
    return config.build("smoke", overrides=overrides, root=str(root))


def full_gpt2(gpt2_dir):
    """Full GPT-2 built by tokenizers itself from the reference files."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE.from_file(str(gpt2_dir / "vocab.json"), str(gpt2_dir / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import GPT2_DIR  # module scope cannot use the function-scoped gpt2_dir fixture

    if not (GPT2_DIR / "vocab.json").exists():
        pytest.skip("needs ../shared/data/gpt2 (GPT-2 vocab.json and merges.txt)")
    cfg = make_cfg(tmp_path_factory.mktemp("tok"), tokenizer_path=str(GPT2_DIR), tokenizer_source="local")
    meta = T.build(cfg)
    return cfg, meta, T.load(cfg)


def roundtrip(tok, text):
    ids = tok.encode(text).ids
    assert all(0 <= i < LIVE for i in ids)
    back = tok.decode(ids, skip_special_tokens=False)
    assert back.encode("utf-8") == text.encode("utf-8")
    return ids


# ---- what the tokenizer emits ---------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
       | st.text(alphabet=" \t\n\r'sdmtlvre.!?0123456789abcXYZ_<|>endoftx\u00e9\u4e2d\U0001f986",
                 max_size=120))
def test_any_text_ids_below_live_vocab_and_exact_roundtrip(built, text):
    roundtrip(built[2], text)


def test_tinystories_sample_roundtrip(built, tinystories_sample):
    text = tinystories_sample.read_text(encoding="utf-8")
    ids = roundtrip(built[2], text)
    assert ids.count(SEP) == text.count("<|endoftext|>") == 1092


def test_endoftext_is_one_token(built):
    tok = built[2]
    assert tok.encode("<|endoftext|>").ids == [SEP]
    assert tok.token_to_id("<|endoftext|>") == SEP and tok.get_vocab_size() == LIVE
    ids = tok.encode("The end.<|endoftext|>Once upon").ids
    assert ids.count(SEP) == 1 and max(i for i in ids if i != SEP) < SEP


def test_agrees_with_full_gpt2_where_full_gpt2_stays_below_7999(built, gpt2_dir, tinystories_sample):
    tok, full = built[2], full_gpt2(gpt2_dir)
    text = tinystories_sample.read_text(encoding="utf-8").replace("<|endoftext|>", "")
    pieces = [s for s in re.split(r"(?<=[.!?\n])", text) if s.strip()]
    pieces += sorted(set(re.findall(r" ?\w+", text)))
    kept = 0
    for enc_full, enc in zip(full.encode_batch(pieces), tok.encode_batch(pieces)):
        if max(enc_full.ids) < SEP:
            assert enc.ids == enc_full.ids
            kept += 1
    assert kept > 5000  # most of the sample uses only the first merges
    # where full GPT-2 needs a later merge, the truncated one still covers the text with live ids
    assert any(max(e.ids) >= SEP for e in full.encode_batch(pieces))


def test_live_ids_are_gpt2_ids(built, gpt2_dir):
    vocab = json.loads((gpt2_dir / "vocab.json").read_text(encoding="utf-8"))
    mine = built[2].get_vocab()
    assert {t: i for t, i in vocab.items() if i < SEP} == {t: i for t, i in mine.items() if i < SEP}


def test_dead_mask_marks_exactly_the_phantom_rows(built):
    cfg = built[0]
    mask = T.load_dead_mask(cfg)
    assert mask.dtype == bool and mask.shape == (ROWS,)
    assert mask.sum() == ROWS - LIVE and mask[LIVE:].all() and not mask[:LIVE].any()
    from safetensors import safe_open

    with safe_open(str(cfg.dead_mask_path), "np") as f:
        assert list(f.keys()) == ["dead_mask"]


def test_meta(built):
    cfg, meta, _ = built
    assert meta["live_vocab"] == LIVE and meta["rows"] == ROWS and meta["separator_id"] == SEP
    assert meta["input_sha256"] == {"vocab.json": T.VOCAB_SHA256, "merges.txt": T.MERGES_SHA256}
    assert meta["table_sha256"] == T.TABLE_SHA256[LIVE]
    assert meta["tokenizer_sha256"] == sha256_file(cfg.tokenizer_dir / "tokenizer.json")


def test_truncate_matches_stage_output(built, gpt2_dir):
    vocab, merges = T.from_vocab_merges(gpt2_dir / "vocab.json", gpt2_dir / "merges.txt")
    assert T.truncate(vocab, merges, LIVE).to_str(pretty=True) == built[2].to_str(pretty=True)


def test_other_live_vocab(tmp_path, gpt2_dir):
    cfg = make_cfg(tmp_path, tokenizer_path=str(gpt2_dir), live_vocab=300, rows=320)
    T.build(cfg)
    tok = T.load(cfg)
    ids = roundtrip(tok, "Once upon a time, a duck named Quackers swam.<|endoftext|>")
    assert max(ids) == 299 and tok.get_vocab_size() == 300
    assert T.load_dead_mask(cfg).sum() == 20


# ---- every source gives the same bytes --------------------------------------------------------
def write_tiktoken(vocab_path, out):
    dec = {c: b for b, c in T.BYTE_ENCODER.items()}
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = [f"{base64.b64encode(bytes(dec[c] for c in t)).decode()} {i}"
             for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if t != "<|endoftext|>"]
    out.write_text("\n".join(lines) + "\n")
    return out


def build_bytes(root, **overrides):
    cfg = make_cfg(root, **overrides)
    T.build(cfg)
    return (cfg.tokenizer_dir / "tokenizer.json").read_bytes()


def test_local_sources_are_byte_identical(tmp_path, gpt2_dir, monkeypatch):
    reference = build_bytes(tmp_path / "r0", tokenizer_path=str(gpt2_dir), tokenizer_source="local")

    # merges.txt with the '#version' header, as the hub and OpenAI publish it
    d = tmp_path / "header"
    d.mkdir()
    (d / "vocab.json").symlink_to(gpt2_dir / "vocab.json")
    (d / "merges.txt").write_bytes(b"#version: 0.2\n" + (gpt2_dir / "merges.txt").read_bytes())
    assert build_bytes(tmp_path / "r1", tokenizer_path=str(d)) == reference

    # a full GPT-2 tokenizer.json saved by tokenizers itself
    d = tmp_path / "tokjson"
    d.mkdir()
    full_gpt2(gpt2_dir).save(str(d / "tokenizer.json"))
    assert build_bytes(tmp_path / "r2", tokenizer_path=str(d)) == reference

    # tiktoken's gpt2.tiktoken, merges recovered from ranks
    d = tmp_path / "tiktoken"
    d.mkdir()
    write_tiktoken(gpt2_dir / "vocab.json", d / "gpt2.tiktoken")
    assert build_bytes(tmp_path / "r3", tokenizer_path=str(d)) == reference

    # the folder named by DUCKLING_GPT2_DIR when tokenizer_path is empty
    monkeypatch.setenv("DUCKLING_GPT2_DIR", str(gpt2_dir))
    assert build_bytes(tmp_path / "r4", tokenizer_source="local") == reference


def test_hub_source_from_the_hub_cache(tmp_path, gpt2_dir, monkeypatch):
    """The real hf_hub_download path, answered from a hub cache laid out as the library does."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "models--gpt2"
    commit = "0" * 40
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snap / "vocab.json").symlink_to(gpt2_dir / "vocab.json")
    (snap / "merges.txt").write_bytes(b"#version: 0.2\n" + (gpt2_dir / "merges.txt").read_bytes())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = build_bytes(tmp_path / "r0", tokenizer_path=str(gpt2_dir))
    assert build_bytes(tmp_path / "r1", tokenizer_source="hub") == reference
    assert read_json(tmp_path / "r1" / "data" / "tokenizer" / "live8000-rows10000" / "meta.json")["source"].startswith("hub")


@pytest.mark.network
def test_whisper_source_is_byte_identical(tmp_path, gpt2_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reference = build_bytes(tmp_path / "r0", tokenizer_path=str(gpt2_dir))
    try:
        got = build_bytes(tmp_path / "r1", tokenizer_source="whisper")
    except DucklingError as e:
        if "pip download" in str(e):
            pytest.skip(f"package index unreachable: {e}")
        raise
    assert got == reference
    cached = tmp_path / "cache" / "duckling" / "gpt2.tiktoken"
    assert sha256_file(cached) == T.TIKTOKEN_SHA256
    # the second time comes from the cache, without pip
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert build_bytes(tmp_path / "r2", tokenizer_source="whisper") == reference


# ---- the stage: skip logic and errors --------------------------------------------------------------
def test_skip_then_force(root, gpt2_dir, capsys):
    cfg = config.build("smoke", overrides={"tokenizer_path": str(gpt2_dir)})
    assert cfg.root_dir == root
    T.build(cfg)
    out = capsys.readouterr().out
    assert "tokenizer: 8000 live ids (GPT-2 0..7998 + <|endoftext|>=7999), 2000 phantom rows" in out
    assert "data/tokenizer/live8000-rows10000/tokenizer.json" in out
    paths = [cfg.tokenizer_dir / "tokenizer.json", cfg.tokenizer_dir / "meta.json", cfg.dead_mask_path]
    for p in paths:
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))

    meta = T.build(cfg)
    assert "tokenizer: up to date, skipped (use --force to rebuild)" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in paths] == [1_000_000_000] * 3
    assert meta["live_vocab"] == LIVE

    T.build(cfg, force=True)
    assert "skipped" not in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns != 1_000_000_000 for p in paths)

    # another rows setting is another result
    cfg2 = config.build("smoke", overrides={"tokenizer_path": str(gpt2_dir), "rows": 12000})
    T.build(cfg2)
    assert "skipped" not in capsys.readouterr().out
    assert T.load_dead_mask(cfg2).sum() == 4000


def test_load_before_build_names_the_task(root):
    cfg = config.build("smoke")
    for fn in (T.load, T.load_dead_mask):
        with pytest.raises(DucklingError, match="invoke tokenizer"):
            fn(cfg)


def local_cfg(folder):
    return config.build("smoke", overrides={"tokenizer_path": str(folder), "tokenizer_source": "local"})


def one_line_error(cfg) -> str:
    with pytest.raises(DucklingError) as e:
        T.build(cfg)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_unusable_local_folder(root, make):
    d = root / "gpt2"
    if make == "empty":
        d.mkdir()
    cfg = local_cfg(d)
    msg = one_line_error(cfg)
    assert "tried local:" in msg and str(d) in msg
    assert "hub:" not in msg and "--set tokenizer_path=DIR" in msg and "DUCKLING_GPT2_DIR" in msg
    assert not (cfg.tokenizer_dir / "tokenizer.json").exists()


def test_no_source_works_lists_every_source(root, monkeypatch, capsys):
    monkeypatch.delenv("DUCKLING_GPT2_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip fails at once, as without a network
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root / "hub"))
    msg = one_line_error(config.build("smoke"))
    assert re.search(r"tried local: no folder given .*; hub: .*; whisper: pip download .* failed", msg), msg
    assert "--set tokenizer_path=DIR" in msg


def test_corrupted_vocab_is_rejected(root, gpt2_dir):
    d = root / "gpt2"
    d.mkdir()
    vocab = json.loads((gpt2_dir / "vocab.json").read_text(encoding="utf-8"))
    vocab["Ġduck"], vocab["Ġgoose"] = vocab["Ġgoose"], vocab["Ġduck"]
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").symlink_to(gpt2_dir / "merges.txt")
    msg = one_line_error(local_cfg(d))
    assert "vocab.json: sha256" in msg and "not GPT-2's" in msg


def test_tokenizer_json_with_other_merges_is_rejected(root, gpt2_dir):
    """tokenizer.json has no file checksum (its layout varies by version); the table checksum
    catches a table that is valid BPE but not GPT-2's: two independent merges swapped."""
    d = root / "gpt2"
    d.mkdir()
    full_gpt2(gpt2_dir).save(str(d / "tokenizer.json"))
    doc = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    model = doc["model"]
    k = 7000
    a, b = (m if isinstance(m, list) else m.split(" ") for m in model["merges"][k:k + 2])
    ta, tb = "".join(a), "".join(b)
    assert ta not in b  # independent, so the swapped table is still valid BPE
    model["merges"][k:k + 2] = model["merges"][k + 1], model["merges"][k]
    model["vocab"][ta], model["vocab"][tb] = model["vocab"][tb], model["vocab"][ta]
    (d / "tokenizer.json").write_text(json.dumps(doc))
    msg = one_line_error(local_cfg(d))
    assert "tokenizer.json" in msg and "checksum mismatch" in msg


def test_unknown_source_setting(root):
    with pytest.raises(DucklingError, match="tokenizer_source=pypi"):
        T.build(config.build("smoke", overrides={"tokenizer_source": "pypi"}))
