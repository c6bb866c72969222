"""The training logs against a direct computation: the first steps of a tiny model run by hand, and
bits per byte worked out from a tiny known corpus."""
import csv
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from duckling import config, movie
from duckling.data import corpus, tokenizer
from duckling.train import batches, loop
from duckling.train.model import GPT, phantom_mass_from_grad

# the first story is the validation stream (val_tokens=1: the first whole story reaches it); it
# has two-byte characters, so bytes, characters and tokens all differ
VAL_STORY = ("The little duck sat by the café and said: \"Thé, s'il vous plaît!\" The girl laughed, gave "
             "him some bread, and the duck swam away across the pond, happy and warm.")
TRAIN_STORIES = [f"Once upon a time there was a duck number {i}. It liked to swim in the pond with its "
                 f"mother, and every day it found a new friend to play with." for i in range(30)]
LR, WARMUP = 2e-3, 4


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_logs_of_a_run_equal_a_direct_computation(root, gpt2_dir):
    """30 steps of a tiny model on the known corpus, as `invoke train` runs them (more than a buffer of
    LOG_EVERY rows between checkpoints); one test, so that every check sees the run it makes."""
    src = root / "stories.txt"
    src.write_text("".join(f"{s}\n{corpus.SEPARATOR}\n" for s in [VAL_STORY, *TRAIN_STORIES]), encoding="utf-8")
    over = dict(tokenizer_path=str(gpt2_dir), corpus_source=str(src), val_tokens=1, n_layer=1, d_model=16,
                n_head=2, d_ff=32, ctx=16, batch_size=2, max_steps=30, warmup_steps=WARMUP, lr=LR, eval_every=10,
                device="cpu", precision="fp32", threads=1, sample_tokens=2, checkpoint_every=100)
    cfg = config.build("smoke", run="logs", overrides=over)
    cfg.save()
    tokenizer.build(cfg)
    corpus.build(cfg, progress=False)
    summary = loop.run(cfg, progress=False)
    logged, evals = rows(cfg.run_dir / "metrics.csv"), rows(cfg.run_dir / "evals.csv")
    assert [int(r["step"]) for r in logged] == list(range(1, 31)) and [int(r["step"]) for r in evals] == [10, 20, 30]

    # the first five steps by hand, from the initialisation as training draws it
    torch.manual_seed(cfg.seed)
    model = GPT(cfg)
    assert np.array_equal(movie.Movie(cfg.movie_dir).frame(0),
                          model.W.detach().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    opt, data, norms = loop.make_optimizer(cfg, model, "cpu"), batches.Batches(cfg, corpus.load(cfg)["train"], "cpu"), []
    for s, row in enumerate(logged[:5]):
        x, y = data.get(s)
        logits = model(x)
        opt.zero_grad()
        F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        p = logits.detach().double().softmax(-1)  # the full softmax, every column
        assert float(row["loss"]) == pytest.approx(F.cross_entropy(logits.double().flatten(0, 1), y.flatten()).item(),
                                                   rel=1e-6)
        # torch sums the squares in float32, where the phantom rows' tiny squares fall below the sum's
        # last bit (measured 3e-5 of the norm at this init); a wrong norm is off by far more
        norms.append(math.sqrt(sum(float((q.grad.double() ** 2).sum()) for q in model.parameters())))
        assert float(row["grad_norm"]) == pytest.approx(norms[-1], rel=1e-4)
        assert float(row["phantom_mass"]) == pytest.approx(p[..., cfg.live_vocab:].sum(-1).mean().item(), abs=1e-6)
        assert p[..., cfg.live_vocab - 1].mean().item() > 1e-5  # the separator's column: live, and no part of it
        lr = LR * min(s + 1, WARMUP) / WARMUP  # the warmup, then the cosine's first step, at its top
        assert float(row["lr"]) == pytest.approx(lr, rel=1e-12)
        for g in opt.param_groups:
            g["lr"] = lr
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    # the clipping matters: every norm is above the clip, though Adam's first update ignores the scale
    # (without clipping, step 4's loss moves by 6e-6 of itself, step 5's by more)
    assert min(norms) > cfg.grad_clip
    assert summary["final_loss"] == float(logged[-1]["loss"])

    # bits per byte from the validation story's own tokens and bytes
    ids = tokenizer.load(cfg).encode(VAL_STORY, add_special_tokens=False).ids + [cfg.separator_id]
    n_tokens, n_bytes = len(ids), len(VAL_STORY.encode("utf-8")) + 1  # one byte stands for the story break
    assert n_bytes > len(VAL_STORY) + 1  # the two-byte characters count twice
    for ev in evals:
        assert float(ev["val_bpb"]) == pytest.approx(float(ev["val_loss"]) * n_tokens / (n_bytes * math.log(2)),
                                                     rel=1e-12)
    assert summary["final_val_bpb"] == float(evals[-1]["val_bpb"])
    assert summary["final_val_loss"] == float(evals[-1]["val_loss"])
    assert summary["best_val_loss"] == min(float(ev["val_loss"]) for ev in evals)


def test_the_learning_rate_warms_up_linearly():
    cfg = config.build("smoke", overrides={"max_steps": 8, "warmup_steps": 4, "lr": 2e-3, "min_lr": 1e-4})
    # warmup lr (s + 1) / 4; then cosine over steps 4..8: progress (s - 4) / 4
    want = [5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 1e-4 + 0.95e-3 * (1 + math.cos(math.pi / 4)), 1.05e-3,
            1e-4 + 0.95e-3 * (1 + math.cos(3 * math.pi / 4))]
    assert [loop.lr_at(cfg, s) for s in range(8)] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("steps, first", [(100, 2e-3 / 5), (10, 2e-3)])
def test_the_default_warmup_is_5_percent_of_the_steps(steps, first):
    # 5 steps of 100; 0.5 of 10 rounds to none, and one step is the least
    cfg = config.build("smoke", overrides={"max_steps": steps, "warmup_steps": 0, "lr": 2e-3})
    assert loop.lr_at(cfg, 0) == pytest.approx(first, rel=1e-12)


def test_phantom_mass_is_summed_in_float32():
    grad = torch.full((4, 600, 12), 1e-3, dtype=torch.bfloat16)  # 7200 phantom entries of bf16 1e-3
    mass = phantom_mass_from_grad(grad, 9)
    assert mass.dtype == torch.float32 and mass.item() == pytest.approx(7200 * float(grad[0, 0, 0]), rel=1e-6)
