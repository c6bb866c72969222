"""Bad input and broken files, met through the real `invoke` command as a user meets them.

Each case ends in one `error:` line naming the file or option (never a traceback), leaves nothing
that looks complete, and, where the message gives advice, the advice is followed and works.
"""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import GPT2_DIR

REPO = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))
pytestmark = pytest.mark.skipif(not (GPT2_DIR / "vocab.json").exists(), reason="needs ../shared/data/gpt2")


def env_for(root: Path) -> dict:
    import os

    return {**os.environ, "DUCKLING_ROOT": str(root), "DUCKLING_GPT2_DIR": str(GPT2_DIR), "HF_HUB_OFFLINE": "1"}


def inv(root: Path, *args: str, ok: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([INVOKE, *args], cwd=REPO, env=env_for(root), capture_output=True, text=True, **kw)
    if ok:
        assert p.returncode == 0, f"invoke {' '.join(args)}: {p.stderr[-2000:]}"
    return p


def error_line(p: subprocess.CompletedProcess) -> str:
    """The one error a failed command shows: its last stderr line, which alone starts with 'error:'."""
    assert p.returncode != 0
    assert "Traceback" not in p.stderr + p.stdout, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]  # splitlines cuts at a bar's \r too
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and errors[0] == lines[-1] and errors[0].startswith("error: "), p.stderr[-2000:]
    return errors[0]


def advice(line: str) -> list[str]:
    """The command an error message tells the user to run, as argv."""
    cmd = re.findall(r"`(invoke [^`]+)`", line)
    assert cmd, line
    return cmd[0].split()[1:]


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A root with the tokenizer and one finished smoke training, `base`; copied by each test."""
    root = tmp_path_factory.mktemp("trained")
    for stage in ("tokenizer", "corpus"):
        inv(root, stage, "--profile", "smoke", "--run", "base")
    inv(root, "train", "--run", "base")
    return root


@pytest.fixture
def copy(trained, tmp_path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(trained, root)
    return root


# ---- options: refused before any work ------------------------------------------------------------
@pytest.mark.parametrize("args, names", [
    (["--fraction", "abc"], "--fraction abc"),
    (["--fraction", "inf"], "--fraction inf"),
    (["--set", "n_head=0"], "n_head=0"),
    (["--set", "checkpoint_every=0"], "checkpoint_every=0"),
    (["--set", "eval_every=0"], "eval_every=0"),
    (["--set", "lr=1e-3", "--set", "d_model=33"], "d_model=33"),
])
def test_a_bad_option_is_one_line_before_any_work(tmp_path, args, names):
    p = inv(tmp_path, "all", "--profile", "smoke", "--run", "x", *args, ok=False)
    assert names in error_line(p)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_a_mistyped_run_is_refused_at_once_listing_the_runs(copy):
    for stage in ("train", "analyze", "report"):
        line = error_line(inv(copy, stage, "--run", "bsae", ok=False))
        assert "--run bsae" in line and "base" in line
    assert sorted(p.name for p in (copy / "runs").iterdir()) == ["base"]  # no folder made for the typo


# ---- corpus sources -------------------------------------------------------------------------------
def _corpus(root, source, *extra):
    return inv(root, "corpus", "--profile", "smoke", "--run", "c", "--set", f"corpus_source={source}", *extra,
               ok=False)


@pytest.mark.parametrize("name", ["d.txt", "d.jsonl", "d.parquet"])
def test_a_folder_as_corpus_source(copy, name):
    (copy / name).mkdir()
    line = error_line(_corpus(copy, copy / name))
    assert str(copy / name) in line and "folder" in line
    assert not (copy / "data" / "corpus" / "c" / "meta.json").exists()


def test_a_text_column_of_numbers(copy):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (copy / "n.jsonl").write_text("".join(json.dumps({"text": i}) + "\n" for i in range(50)))
    pq.write_table(pa.table({"text": list(range(50))}), copy / "n.parquet")
    for name in ("n.jsonl", "n.parquet"):
        line = error_line(_corpus(copy, copy / name))
        assert "`text`" in line and "int" in line and name in line


def test_a_big_file_without_separators_gets_advice_that_works(copy, tinystories_sample):
    stories = tinystories_sample.read_text().split("<|endoftext|>")
    flat = copy / "flat.txt"
    with open(flat, "w") as f:  # 10 MB of stories run together: one story to the reader
        while f.tell() < 10_000_000:
            f.write(" ".join(s.strip() for s in stories))
    p = _corpus(copy, flat)
    line = error_line(p)
    assert "allow_epochs" not in line and "<|endoftext|>" in line  # the advice is to separate the stories
    assert not (copy / "data" / "corpus" / "c" / "tokens.safetensors").exists()
    with open(copy / "split.txt", "w") as f:  # followed: each story then a separator line
        f.writelines(s.strip() + "\n<|endoftext|>\n" for s in stories if s.strip())
    assert _corpus(copy, copy / "split.txt").returncode == 0


def test_a_too_small_source_errs_on_its_own_line_and_its_advice_works(copy, tinystories_sample):
    small = copy / "small.txt"
    small.write_text("".join(s + "<|endoftext|>\n" for s in tinystories_sample.read_text().split("<|endoftext|>")[:40]))
    line = error_line(_corpus(copy, small))
    assert "allow_epochs=true" in line
    assert _corpus(copy, small, "--set", "allow_epochs=true").returncode == 0


def test_corpus_rebuilds_are_byte_identical_and_keep_the_training(copy):
    out = copy / "data" / "corpus" / "base" / "tokens.safetensors"
    sums = {sha(out)}
    for _ in range(4):  # a metadata dict written in hash order differed in about half the rebuilds
        inv(copy, "corpus", "--run", "base", "--force")
        sums.add(sha(out))
    assert len(sums) == 1
    assert "up to date" in inv(copy, "train", "--run", "base").stdout


# ---- a run's files ---------------------------------------------------------------------------------
def test_a_refused_command_leaves_the_run_as_it_was(copy):
    cfg_path = copy / "runs" / "base" / "config.json"
    before = cfg_path.read_bytes()
    line = error_line(inv(copy, "train", "--profile", "smoke", "--run", "base", "--fraction", "0.5", ok=False))
    assert "fraction" in line and "--force" in line and "--run" in line
    line = error_line(inv(copy, "analyze", "--run", "base", "--set", "seed=7", ok=False))
    assert "seed: 1337 -> 7" in line
    assert cfg_path.read_bytes() == before
    assert "up to date" in inv(copy, "train", "--run", "base").stdout


def test_a_run_in_progress_is_not_changed_by_a_refused_command(copy):
    inv(copy, "corpus", "--profile", "smoke", "--run", "long", "--set", "max_steps=300")
    cfg_path = copy / "runs" / "long" / "config.json"
    before = cfg_path.read_bytes()
    bg = subprocess.Popen([INVOKE, "train", "--run", "long"], cwd=REPO, env=env_for(copy),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not list((copy / "movies" / "long").glob("W_movie_*")) and bg.poll() is None:
            time.sleep(0.2)
        p = inv(copy, "train", "--profile", "smoke", "--run", "long", "--fraction", "0.5", "--force", ok=False)
        assert "another Duckling stage" in error_line(p)
        assert cfg_path.read_bytes() == before
    finally:
        out, err = bg.communicate(timeout=600)
    assert bg.returncode == 0, err[-2000:]
    assert "up to date" in inv(copy, "train", "--run", "long").stdout


def test_force_replaces_the_settings_and_says_what_it_deletes(copy):
    p = inv(copy, "train", "--run", "base", "--set", "lr=0.01", "--force")
    assert "lr: 0.003 -> 0.01" in p.stdout and str(copy / "movies" / "base") in p.stdout
    assert json.loads((copy / "runs" / "base" / "config.json").read_text())["lr"] == 0.01
    assert "up to date" in inv(copy, "train", "--run", "base").stdout


@pytest.mark.parametrize("edit, names", [
    (lambda t: t[: len(t) // 2], "unreadable"),
    (lambda t: "not json", "unreadable"),
    (lambda t: "[1, 2]", "unreadable"),
    (lambda t: t.replace('"lr": 0.003', '"lr": "fast"'), "lr"),
    (lambda t: t.replace('"n_layer": 2', '"n_layer": 2.5'), "n_layer"),
    (lambda t: t.replace('"precision": "auto"', '"precision": "fp8"'), "precision=fp8"),
    (lambda t: t.replace('"live_vocab": 8000', '"live_vocab": 12000'), "live_vocab=12000"),
])
def test_a_broken_run_config_is_named(copy, edit, names):
    path = copy / "runs" / "base" / "config.json"
    path.write_text(edit(path.read_text()))
    (copy / "runs" / "base" / "train.json").unlink()
    line = error_line(inv(copy, "train", "--run", "base", ok=False))
    assert str(path) in line and names in line
    assert not (copy / "runs" / "base" / "train.json").exists()


def _flip(b: bytes) -> bytes:
    i = len(b) // 2  # inside the model and optimizer tensors
    return b[:i] + bytes([b[i] ^ 0x10]) + b[i + 1:]


class _Planted:
    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "flipped byte", "planted pickle"])
def test_a_broken_checkpoint_is_named_and_never_resumed(copy, kind):
    ck = copy / "runs" / "base" / "checkpoint.pt"
    good = ck.read_bytes()
    marker = copy / "code-ran"
    if kind == "planted pickle":
        import torch

        planted = _Planted()
        planted.marker = marker
        torch.save({"model": planted}, ck)
    else:
        ck.write_bytes({"truncated": good[: len(good) // 3], "empty": b"", "garbage": b"\x00garbage" * 99,
                        "flipped byte": _flip(good)}[kind])
    (copy / "runs" / "base" / "train.json").unlink()
    line = error_line(inv(copy, "train", "--run", "base", ok=False))
    assert str(ck) in line and not marker.exists()
    assert not (copy / "runs" / "base" / "train.json").exists()
    ck.unlink()  # the advice: delete it to train from step 0
    assert "24 steps" in inv(copy, "train", "--run", "base").stdout


# ---- the movie -------------------------------------------------------------------------------------
def test_a_missing_shard_is_refused_and_the_advice_re_records_it(copy):
    shards = sorted((copy / "movies" / "base").glob("W_movie_*.safetensors"))
    shards[1].unlink()
    line = error_line(inv(copy, "analyze", "--run", "base", ok=False))
    assert str(shards[1]) in line
    assert not (copy / "data" / "record" / "base" / "record.json").exists()
    line = error_line(inv(copy, "train", "--run", "base", ok=False))  # not "up to date"
    assert str(shards[1]) in line
    inv(copy, *advice(line))
    inv(copy, "analyze", "--run", "base")
    rec = json.loads((copy / "data" / "record" / "base" / "record.json").read_text())
    assert rec["provenance"]["frames"] == 25


def test_a_shard_of_another_training_is_refused(copy):
    inv(copy, "corpus", "--profile", "smoke", "--run", "other", "--set", "seed=2")
    inv(copy, "train", "--run", "other")
    ours = sorted((copy / "movies" / "base").glob("W_movie_*.safetensors"))[1]
    shutil.copy(copy / "movies" / "other" / ours.name, ours)
    line = error_line(inv(copy, "analyze", "--run", "base", ok=False))
    assert str(ours) in line
    assert not (copy / "data" / "record" / "base").exists()


def test_a_stage_that_skips_keeps_its_recorded_time(copy):
    inv(copy, "analyze", "--run", "base")
    timings = copy / "runs" / "base" / "timings.json"
    before = json.loads(timings.read_text())
    assert before["train"] > 0.5 and before["analyze"] > 0
    for stage in ("tokenizer", "corpus", "train", "analyze"):
        assert "up to date" in inv(copy, stage, "--run", "base").stdout
    assert json.loads(timings.read_text()) == before


# ---- the disk fills while recording -------------------------------------------------------------------
@pytest.mark.slow
def test_disk_full_while_recording_is_one_line_and_training_resumes(copy, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        root = disk / "root"
        shutil.copytree(copy, root)
        inv(root, "corpus", "--profile", "smoke", "--run", "full", "--set", "max_steps=240",
            "--set", "checkpoint_every=10")
        bg = subprocess.Popen([INVOKE, "train", "--run", "full"], cwd=REPO, env=env_for(root),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ck = root / "runs" / "full" / "checkpoint.pt"
        while not ck.exists() and bg.poll() is None:
            time.sleep(0.05)
        ballast = disk / "ballast"
        with open(ballast, "wb") as f:  # fill the disk to its last byte
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        out, err = bg.communicate(timeout=600)
        p = subprocess.CompletedProcess(bg.args, bg.returncode, out, err)
        line = error_line(p)
        assert "disk is full" in line and "needs about" in line and str(root) in line
        ballast.unlink()  # space freed: the advice resumes from the last checkpoint
        again = inv(root, *advice(line))
        assert "resuming full from step" in again.stdout
        inv(root, "analyze", "--run", "full")  # a complete movie of this training
        steps = np.load(root / "data" / "record" / "full" / "series.npz")["steps"]
        assert steps.tolist() == list(range(241))
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_a_forces_log_of_another_shape_is_named_and_the_advice_retrains(copy):
    path = copy / "runs" / "base" / "forces.npy"
    np.save(path, np.load(path)[:10])  # a resumed run would write into rows that are not there
    (copy / "runs" / "base" / "train.json").unlink()
    line = error_line(inv(copy, "train", "--run", "base", ok=False))
    assert str(path) in line
    inv(copy, *advice(line))
    assert np.load(path).shape == (25,)
