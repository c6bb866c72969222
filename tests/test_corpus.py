"""The corpus stage on real sources: the synthetic stories, the TinyStories sample as .txt, JSONL and
Parquet, a local copy laid out like the hub dataset, and every kind of bad input."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duckling import config
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError


def make_cfg(gpt2_dir, **over):
    over = {"tokenizer_path": str(gpt2_dir), **over}
    cfg = config.build("smoke", overrides=over)
    cfg.save()
    tokenizer.build(cfg)
    return cfg


def sample_stories(path):
    return list(corpus._txt_stories(path))


def test_synthetic_corpus_has_exactly_the_budget(root, gpt2_dir):
    cfg = make_cfg(gpt2_dir)
    meta = corpus.build(cfg, progress=False)
    data = corpus.load(cfg)
    train, val, counts = data["train"], data["val"], data["counts"]
    assert train.dtype == np.uint16 and train.size == cfg.train_tokens == meta["train_tokens"]
    assert val.size >= cfg.val_tokens and val[-1] == cfg.separator_id  # whole stories
    assert int(train.max()) < cfg.live_vocab and int(val.max()) < cfg.live_vocab
    assert counts.sum() == train.size and counts.size == cfg.live_vocab
    assert (train == cfg.separator_id).sum() >= meta["train_stories"] - 1
    counts = corpus.load(cfg)["counts"]
    assert meta["n_natural_dead"] == ((counts == 0).sum() - (counts[cfg.separator_id] == 0))
    assert 0 < meta["unigram_entropy_nats"] < np.log(cfg.live_vocab)
    # validation stories are not training stories
    tok = tokenizer.load(cfg)
    first_val = tok.decode(val[: np.argmax(val == cfg.separator_id)].tolist())
    assert first_val not in tok.decode(train.tolist())


def test_tinystories_txt_matches_encode_batch_and_counts_bytes(root, gpt2_dir, tinystories_sample):
    texts = sample_stories(tinystories_sample)
    assert len(texts) == 1092
    cfg = make_cfg(gpt2_dir, corpus_source=str(tinystories_sample), max_steps=4, val_tokens=2000)
    meta = corpus.build(cfg, progress=False)
    data = corpus.load(cfg)
    tok = tokenizer.load(cfg)
    sep = cfg.separator_id
    # the validation head is the file's first stories, encoded exactly as encode_batch does
    expect = np.concatenate([np.array(e.ids + [sep]) for e in tok.encode_batch(texts[: meta["val_stories"]])])
    assert np.array_equal(data["val"], expect)
    assert meta["val_bytes"] == sum(len(t.encode()) + 1 for t in texts[: meta["val_stories"]])
    rest = np.concatenate([np.array(e.ids + [sep]) for e in tok.encode_batch(texts[meta["val_stories"]:])])
    assert np.array_equal(data["train"], rest[: cfg.train_tokens])


def test_whole_tinystories_sample_stays_below_live_vocab(gpt2_dir, root, tinystories_sample):
    cfg = make_cfg(gpt2_dir)
    tok = tokenizer.load(cfg)
    ids = np.concatenate([np.array(e.ids) for e in tok.encode_batch(sample_stories(tinystories_sample))])
    assert ids.size > 200_000 and int(ids.max()) < cfg.live_vocab


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_jsonl_and_parquet_sources(root, gpt2_dir, tinystories_sample, tmp_path, fmt):
    texts = sample_stories(tinystories_sample)[:300]
    path = tmp_path / f"stories.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    else:
        pq.write_table(pa.table({"text": texts}), path)
    cfg = make_cfg(gpt2_dir, corpus_source=str(path), max_steps=2, val_tokens=1000)
    meta = corpus.build(cfg, progress=False)
    assert meta["train_tokens"] == cfg.train_tokens and meta["source"] == f"file:{path}"


def test_hub_code_path_through_a_local_copy(root, gpt2_dir, tinystories_sample, tmp_path):
    """`tinystories` goes through datasets.load_dataset(name, split=..., streaming=True); a folder laid
    out like the hub repo (data/{train,validation}-*.parquet) takes the same code path offline."""
    texts = sample_stories(tinystories_sample)
    (tmp_path / "hub" / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": texts[100:]}), tmp_path / "hub/data/train-00000-of-00001.parquet")
    pq.write_table(pa.table({"text": texts[:100]}), tmp_path / "hub/data/validation-00000-of-00001.parquet")
    cfg = make_cfg(gpt2_dir, corpus_source="tinystories", hub_dataset=str(tmp_path / "hub"), max_steps=3,
                   val_tokens=1000)
    meta = corpus.build(cfg, progress=False)
    tok = tokenizer.load(cfg)
    data = corpus.load(cfg)
    assert tok.decode(data["val"][:50].tolist()).startswith(texts[0][:20])
    assert tok.decode(data["train"][:50].tolist()).startswith(texts[100][:20])
    assert meta["train_tokens"] == cfg.train_tokens


def test_budget_larger_than_source_and_epochs(root, gpt2_dir, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("".join(f"Story number {i}. The duck swam.\n<|endoftext|>\n" for i in range(40)))
    cfg = make_cfg(gpt2_dir, corpus_source=str(small), val_tokens=50)
    with pytest.raises(DucklingError, match=r"holds [\d,]+ train tokens but the budget needs 6,145") as e:
        corpus.build(cfg, progress=False)
    assert "\n" not in str(e.value)
    assert not (cfg.corpus_dir / "tokens.safetensors").exists()
    cfg = make_cfg(gpt2_dir, corpus_source=str(small), val_tokens=50, allow_epochs=True)
    meta = corpus.build(cfg, progress=False)
    assert meta["epochs"] > 1 and meta["train_tokens"] == cfg.train_tokens


@pytest.mark.parametrize("content, match", [
    (None, "no such corpus file"),
    (b"", "empty"),
    (b"Once upon a time \xff\xfe there was a duck.\n<|endoftext|>\n", "not UTF-8"),
])
def test_bad_files_give_one_line_errors(root, gpt2_dir, tmp_path, content, match):
    path = tmp_path / "c.txt"
    if content is not None:
        path.write_bytes(content)
    cfg = make_cfg(gpt2_dir, corpus_source=str(path))
    with pytest.raises(DucklingError, match=match) as e:
        corpus.build(cfg, progress=False)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert not cfg.corpus_dir.exists() or not any(cfg.corpus_dir.iterdir())


def test_missing_text_column(root, gpt2_dir, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"story": "A duck."}\n{"story": "A frog."}\n')
    cfg = make_cfg(gpt2_dir, corpus_source=str(path))
    with pytest.raises(DucklingError, match="no `text` column"):
        corpus.build(cfg, progress=False)


def test_skips_when_up_to_date_and_force_rebuilds(root, gpt2_dir, capsys):
    cfg = make_cfg(gpt2_dir)
    corpus.build(cfg, progress=False)
    out = cfg.corpus_dir / "tokens.safetensors"
    mtime = out.stat().st_mtime_ns
    corpus.build(cfg, progress=False)
    assert "skipped" in capsys.readouterr().out and out.stat().st_mtime_ns == mtime
    corpus.build(cfg, force=True, progress=False)
    assert out.stat().st_mtime_ns != mtime


def test_missing_tokenizer_names_the_task(root):
    cfg = config.build("smoke")
    with pytest.raises(DucklingError, match="invoke tokenizer"):
        corpus.build(cfg, progress=False)
