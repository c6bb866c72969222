"""The forces logged while training (duckling/train/forces.py) against their definitions, computed here
directly: the softmax push on dead rows, AdamW's direction, and the half-ULP rule."""
import numpy as np
import pytest
import torch

from duckling import config
from duckling.data import corpus, tokenizer
from duckling.metrics import lattice
from duckling.train import batches, forces, loop
from duckling.train.model import GPT


def test_predicted_frozen_known_answers():
    one, zero = np.uint16([0x3F80]), np.uint16([0x0000])  # bf16 bit patterns of 1.0 and +0
    # ulp(1.0) = 2**-7: updates below 2**-8 round back onto 1.0, from 2**-8 on they do not
    assert lattice.predicted_frozen(one, np.float32([2**-8 * 0.99])).all()
    assert not lattice.predicted_frozen(one, np.float32([-(2**-8)])).any()
    assert lattice.predicted_frozen(zero, np.float32([0.0])).all()  # no update keeps zero
    assert not lattice.predicted_frozen(zero, np.float32([1e-38])).any()  # zero's ulp is 2**-133


def test_half_ulp_on_the_device_is_the_lattice_definition():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(0, 0.02, 5000), rng.normal(0, 30, 500), [0.0, -0.0, 1.0, 0.5, -2.0, 1e-39, 3e38]])
    w = torch.tensor(w, dtype=torch.float32)
    bits = w.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(forces.half_ulp_bf16(w).numpy(), lattice.ulp(bits) / 2)


@pytest.fixture
def one_step(root, gpt2_dir):
    cfg = config.build("smoke", run="f", overrides={"tokenizer_path": str(gpt2_dir), "max_steps": 1,
                                                    "grad_clip": 0.0})
    cfg.save()
    tokenizer.build(cfg)
    corpus.build(cfg, progress=False)
    loop.run(cfg, progress=False)
    return cfg


def test_one_step_forces_equal_a_direct_computation(one_step):
    cfg = one_step
    logged = forces.load(cfg.run_dir)
    assert np.isnan(logged.view(np.float32)[0]).all() and logged.shape == (cfg.steps + 1,)
    data = corpus.load(cfg)
    counts = data["counts"][: cfg.live_vocab]
    sets = {"phantom": np.arange(cfg.live_vocab, cfg.rows), "natural_dead": corpus.natural_dead(counts, cfg.separator_id)}
    torch.manual_seed(cfg.seed)  # the model loop.run starts from, and its first batch
    model = GPT(cfg)
    x, y = batches.Batches(cfg, data["train"], "cpu").get(0)
    h = model.wte(x) + model.wpe(torch.arange(x.shape[1]))
    for blk in model.blocks:
        h = blk(h)
    h = model.ln_f(h).detach().double().flatten(0, 1)  # the final hidden states, (N, d)
    p = torch.softmax(h @ model.W.detach().double().T, -1)  # (N, rows)
    N = h.shape[0]
    assert np.allclose(logged["hidden"][1], h.mean(0).numpy(), rtol=0, atol=1e-6)
    for j, ids in enumerate(sets.values()):
        g = p[:, ids].T @ h / N  # g_i = (1/N) sum_n p_ni h_n, for rows that are never a target
        assert np.allclose(logged["grad"][1, j], g.mean(0).numpy(), rtol=1e-4, atol=1e-9), j
        # step 1: m_hat = g, v_hat = g^2, so a = g / (|g| + eps), coordinate by coordinate
        a = g / (g.abs() + 1e-8)
        assert np.allclose(logged["adam"][1, j], a.mean(0).numpy(), atol=1e-4), j
        assert np.isclose(logged["adam_rms"][1, j], a.square().mean().sqrt().item(), atol=1e-4), j
        w = model.W.detach()[ids].double()
        dw = -loop.lr_at(cfg, 0) * (a + cfg.weight_decay * w)  # warmup: the first step's lr
        bits = model.W.detach()[ids].to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        frozen = lattice.predicted_frozen(bits, dw.float().numpy()).mean()
        assert np.isclose(logged["frozen_pred"][1, j], frozen, atol=1e-6), j
        share = (cfg.weight_decay * w).norm() / (a.norm() + (cfg.weight_decay * w).norm())
        assert np.isclose(logged["decay_share"][1, j], share.item(), rtol=1e-4), j
