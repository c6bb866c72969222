"""Training: the data guard, the recording, precision modes, the lock, and kill-and-resume bit identity."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from duckling import config, movie, pipeline
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError
from duckling.io import run_lock
from duckling.train import batches, checkpoint, loop
from duckling.train.model import GPT, phantom_mass, phantom_mass_from_grad


def prepared(gpt2_dir, run="t", **over):
    over = {"tokenizer_path": str(gpt2_dir), **over}
    cfg = config.build("smoke", run=run, overrides=over)
    cfg.save()
    tokenizer.build(cfg)
    corpus.build(cfg, progress=False)
    return cfg


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_model_matches_the_study_and_the_reference_count():
    cfg = config.build("10pct")
    m = GPT(cfg)
    assert sum(p.numel() for p in m.parameters()) == cfg.n_params == 2_931_968
    assert m.W.shape == (10_000, 128) and m.W_out is m.W  # tied
    untied = config.build("smoke", overrides={"tied": False})
    assert GPT(untied).W_out is not GPT(untied).W


def test_phantom_mass_is_the_softmax_mass_on_phantom_ids():
    z = torch.randn(3, 5, 12)
    expect = z.softmax(-1)[..., 9:].sum(-1).mean()
    assert torch.allclose(phantom_mass(z, 9), expect, atol=1e-6)


def test_batches_use_every_token_once_and_never_a_phantom_id(root, gpt2_dir):
    cfg = prepared(gpt2_dir)
    stream = corpus.load(cfg)["train"]
    b = batches.Batches(cfg, stream, "cpu")
    seen = np.zeros(stream.size, int)
    for step in range(cfg.steps):
        x, y = b.get(step)
        assert int(x.max()) < cfg.live_vocab and int(y.max()) < cfg.live_vocab
        starts = b.order[step * cfg.batch_size:(step + 1) * cfg.batch_size] * cfg.ctx
        for s, row in zip(starts.tolist(), x):
            assert np.array_equal(row.numpy(), stream[s:s + cfg.ctx])
            seen[s:s + cfg.ctx] += 1
    assert (seen[:-1] == 1).all() and seen[-1] == 0  # every token an input exactly once, the last a target
    bad = stream.copy()
    bad[5] = cfg.live_vocab + 3
    with pytest.raises(DucklingError, match="live_vocab"):
        batches.Batches(cfg, bad, "cpu")


def test_training_records_every_step_and_learns(root, gpt2_dir):
    cfg = prepared(gpt2_dir)
    summary = loop.run(cfg, progress=False)
    mv = movie.Movie(cfg.movie_dir)
    assert mv.steps.tolist() == list(range(cfg.steps + 1))  # frame 0 is the initialisation
    assert mv.verify(progress=False) == cfg.steps + 1
    m = rows(cfg.run_dir / "metrics.csv")
    assert [int(r["step"]) for r in m] == list(range(1, cfg.steps + 1))
    losses = [float(r["loss"]) for r in m]
    assert losses[-1] < losses[0] - 0.5
    assert all(0 < float(r["phantom_mass"]) < 1 for r in m)
    assert [int(r["step"]) for r in rows(cfg.run_dir / "evals.csv")] == [8, 16, 24]
    # the last frame is the final master W rounded to nearest-even bf16
    ck = checkpoint.load_checkpoint(cfg.run_dir / "checkpoint.pt", "cpu", cfg.run)
    w = ck["model"]["wte.weight"].to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(mv.frame(cfg.steps), w)
    assert summary["frames"] == cfg.steps + 1 and (cfg.run_dir / "samples.json").exists()


def test_second_train_skips_and_force_retrains(root, gpt2_dir, capsys):
    cfg = prepared(gpt2_dir, max_steps=4, eval_every=2)
    loop.run(cfg, progress=False)
    loop.run(cfg, progress=False)
    assert "skipped" in capsys.readouterr().out
    loop.run(cfg, force=True, progress=False)
    assert len(rows(cfg.run_dir / "metrics.csv")) == 4


def test_pure_bf16_weights_live_on_the_lattice(root, gpt2_dir):
    cfg = prepared(gpt2_dir, precision="pure-bf16", max_steps=6)
    loop.run(cfg, progress=False)
    ck = checkpoint.load_checkpoint(cfg.run_dir / "checkpoint.pt", "cpu", cfg.run)
    for name, p in ck["model"].items():
        assert torch.equal(p, p.to(torch.bfloat16).float()), name
    w = ck["model"]["wte.weight"].to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(movie.Movie(cfg.movie_dir).frame(6), w)


def test_untied_model_records_both_matrices(root, gpt2_dir):
    cfg = prepared(gpt2_dir, tied=False, max_steps=3)
    loop.run(cfg, progress=False)
    assert movie.Movie(cfg.movie_dir, name="Wout").steps.tolist() == [0, 1, 2, 3]
    assert not np.array_equal(movie.Movie(cfg.movie_dir).frame(3), movie.Movie(cfg.movie_dir, name="Wout").frame(3))


def test_a_second_stage_on_the_same_run_refuses(root, gpt2_dir):
    cfg = prepared(gpt2_dir, max_steps=2)
    with run_lock(cfg.run_dir):
        with pytest.raises(DucklingError, match="another Duckling stage"):
            pipeline.run_stage("train", cfg)
    assert not (cfg.run_dir / "train.json").exists()


TRAIN = "from duckling import config; from duckling.train import loop; loop.run(config.load('{run}'), progress=False)"


@pytest.mark.slow
def test_killed_training_resumes_bit_identical(root, gpt2_dir):
    over = dict(max_steps=150, checkpoint_every=20, eval_every=30, shard_frames=7, d_model=48, ctx=96,
                batch_size=6, threads=1)
    ref = prepared(gpt2_dir, run="ref", **over)
    loop.run(ref, progress=False)
    cfg = prepared(gpt2_dir, run="killed", **over)
    env = {**os.environ, "DUCKLING_ROOT": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", TRAIN.format(run="killed")], env=env)
    ckpt, deadline = cfg.run_dir / "checkpoint.pt", time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.3)  # land somewhere between checkpoints, likely mid-shard
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cfg.run_dir / "train.json").exists(), "the run finished before it could be killed"
    done = checkpoint.load_checkpoint(ckpt, "cpu", "x")["step"]
    assert 0 < done < cfg.steps
    assert subprocess.call([sys.executable, "-c", TRAIN.format(run="killed")], env=env) == 0
    assert loop.read_json(cfg.run_dir / "train.json")["resumed_from"] == done

    a, b = movie.Movie(ref.movie_dir), movie.Movie(cfg.movie_dir)
    assert a.steps.tolist() == b.steps.tolist() == list(range(cfg.steps + 1))
    for step in a.steps:
        assert np.array_equal(a.frame(step), b.frame(step)), step
    b.verify(progress=False)
    strip = lambda rs: [(r["step"], r["loss"], r["lr"], r["grad_norm"], r["phantom_mass"]) for r in rs]
    assert strip(rows(ref.run_dir / "metrics.csv")) == strip(rows(cfg.run_dir / "metrics.csv"))
    assert rows(ref.run_dir / "evals.csv") == rows(cfg.run_dir / "evals.csv")
    assert (ref.run_dir / "forces.npy").read_bytes() == (cfg.run_dir / "forces.npy").read_bytes()
    assert loop.read_csv(cfg.run_dir / "metrics.csv")["step"].size == cfg.steps
    assert not list(cfg.movie_dir.glob(".*tmp*"))


def test_phantom_mass_read_from_the_gradient_equals_the_softmax_mass():
    z = torch.randn(2, 7, 12, requires_grad=True)
    y = torch.randint(0, 9, (2, 7))
    grads = []
    z.register_hook(grads.append)
    torch.nn.functional.cross_entropy(z.flatten(0, 1), y.flatten()).backward()
    assert torch.allclose(phantom_mass_from_grad(grads[0], 9), phantom_mass(z, 9), atol=1e-6)
