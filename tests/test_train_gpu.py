"""The GPU training path (train/graph.py, Batches.gather, the writer's CUDA copy), held on the CPU.

A CUDA graph cannot be captured here. What can be run is: the fixed-buffer step itself, uncaptured
(`graph=on`), against the plain loop, bit for bit; the warm-up / capture / replay order, with a
stand-in for torch.cuda whose capture runs nothing, as a real one does; torch.compile's step against
the eager one; and bench/gpu.sh's dry mode. The tests marked cuda run only where there is a GPU.
"""
import contextlib
import csv
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from duckling import config, movie
from duckling.data import corpus, tokenizer
from duckling.errors import DucklingError
from duckling.train import batches, graph, loop
from duckling.train.model import GPT

REPO = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def prepared(gpt2_dir, run, **over):
    cfg = config.build("smoke", run=run, overrides={"tokenizer_path": str(gpt2_dir), **over})
    cfg.save()
    tokenizer.build(cfg)
    corpus.build(cfg, progress=False)
    return cfg


def logs(cfg) -> dict:
    """Everything a training writes that must not depend on how its step ran (not the clock)."""
    with open(cfg.run_dir / "metrics.csv") as f:
        metrics = [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in csv.DictReader(f)]
    mv = movie.Movie(cfg.movie_dir)
    return {"metrics": metrics, "evals": (cfg.run_dir / "evals.csv").read_text(),
            "forces": (cfg.run_dir / "forces.npy").read_bytes(), "steps": mv.steps.tolist(),
            "frames": [mv.frame(int(s)).tobytes() for s in mv.steps]}


@pytest.mark.parametrize("precision", ["fp32", "pure-bf16"])
def test_the_fixed_buffer_step_writes_what_the_plain_loop_writes(root, gpt2_dir, monkeypatch, precision):
    """graph=on on the CPU: the batch gathered from a step tensor, lr in a tensor, outputs and forces
    rows through fixed buffers. Catches a gather off by a step, an lr never filled, a phantom mass or
    forces row not copied out, pure-bf16 rounding left out of the step."""
    plain = prepared(gpt2_dir, "plain", precision=precision, graph="off")
    loop.run(plain, progress=False)
    calls = []
    real = graph.GraphStep.__call__
    monkeypatch.setattr(graph.GraphStep, "__call__", lambda self, *a: calls.append(a[0]) or real(self, *a))
    fixed = prepared(gpt2_dir, "fixed", precision=precision, graph="on")
    loop.run(fixed, progress=False)
    assert calls == list(range(fixed.steps))  # every step went through the fixed-buffer step
    a, b = logs(plain), logs(fixed)
    assert a["metrics"] == b["metrics"] and a["evals"] == b["evals"] and a["forces"] == b["forces"]
    assert a["steps"] == b["steps"] and a["frames"] == b["frames"]


def test_gather_from_a_step_tensor_is_the_batch_of_that_step():
    cfg = config.build("smoke", overrides={"max_steps": 9})
    stream = np.random.default_rng(0).integers(0, cfg.live_vocab, cfg.train_tokens).astype(np.uint16)
    b = batches.Batches(cfg, stream, "cpu")
    for step in range(cfg.steps):
        (x, y), (gx, gy) = b.get(step), b.gather(torch.tensor(step))
        assert torch.equal(x, gx) and torch.equal(y, gy), step
    assert not torch.equal(b.gather(torch.tensor(1))[0], b.get(0)[0])


class FakeCuda:
    """torch.cuda's graph calls, on the CPU: streams that order nothing, and a capture that runs the
    step's Python but undoes all it did to the tensors, since a real capture records kernels and runs
    none; replay runs the step."""

    def __init__(self, model, opt, step: graph.GraphStep):
        self.model, self.opt, self.step = model, opt, step
        self.events = []

    def tensors(self) -> list[torch.Tensor]:
        state = [t for s in self.opt.state.values() for t in s.values() if torch.is_tensor(t)]
        return [p.data for p in self.model.parameters()] + state + [self.step.out]

    @contextlib.contextmanager
    def graph(self, g, capture_error_mode=None):
        before = [t.clone() for t in self.tensors()]
        self.events.append("capture")
        yield
        for t, old in zip(self.tensors(), before, strict=True):
            t.copy_(old)

    def install(self, monkeypatch):
        fake = self

        class Graph:
            def replay(self):
                fake.events.append("replay")
                fake.step._step()

        class Stream:
            def wait_stream(self, other):
                pass

        monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
        monkeypatch.setattr(torch.cuda, "graph", self.graph)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: Stream())
        monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
        self.step.cuda, self.step.side = True, Stream()
        real_warm = self.step._warm
        self.step._warm = lambda: self.events.append("eager") or real_warm()


def steps_of(cfg, data, monkeypatch=None) -> tuple[torch.Tensor, list[torch.Tensor], list[str]]:
    """cfg.steps steps from the seeded init: the plain step, or (with monkeypatch) GraphStep on FakeCuda.
    Returns each step's (loss, grad norm, phantom mass), the final weights, the fake's events."""
    torch.manual_seed(cfg.seed)
    model = GPT(cfg)
    opt = loop.make_optimizer(cfg, model, "cpu")
    step_fn, events = loop.stepper(cfg, model, model, opt, data, "cpu", "fp32", None), []
    if monkeypatch is not None:
        body = functools.partial(loop.train_step, cfg, model, model, opt, device="cpu", precision="fp32")
        step_fn = graph.GraphStep(body, data, opt, "cpu")
        fake = FakeCuda(model, opt, step_fn)
        fake.install(monkeypatch)
        events = fake.events
    stats = torch.zeros(cfg.steps, 3)
    for s in range(cfg.steps):
        loss, gnorm = step_fn(s, loop.lr_at(cfg, s), stats[s])
        stats[s, :2] = torch.stack([loss.detach(), gnorm])
    return stats, [p.detach().clone() for p in model.parameters()], events


def test_warm_up_capture_and_replay_train_every_step_once(monkeypatch):
    """WARMUP eager steps, one capture that trains nothing, then a replay per step, the capture's
    step included: the weights and losses of the plain steps. Catches a capture never replayed (a
    lost step), a warm-up that never ends, values filled after the replay instead of before."""
    cfg = config.build("smoke", overrides={"max_steps": 8})
    stream = np.random.default_rng(1).integers(0, cfg.live_vocab, cfg.train_tokens).astype(np.uint16)
    data = batches.Batches(cfg, stream, "cpu")
    plain_stats, plain_w, _ = steps_of(cfg, data)
    stats, w, events = steps_of(cfg, data, monkeypatch)
    n = graph.WARMUP
    assert events == ["eager"] * n + ["capture"] + ["replay"] * (cfg.steps - n)
    assert torch.equal(stats, plain_stats)
    assert all(torch.equal(a, b) for a, b in zip(w, plain_w, strict=True))


def test_the_graph_switch_is_checked_and_changes_no_fingerprint():
    with pytest.raises(DucklingError, match="graph=sometimes: choose auto, on, off"):
        config.build("smoke", overrides=config.parse_overrides(["graph=sometimes"]))
    fp = {g: config.train_fingerprint(config.build("smoke", overrides={"graph": g}), "c", "fp32")
          for g in config.GRAPH}
    assert len(set(fp.values())) == 1
    assert graph.wanted("auto", "cuda") and graph.wanted("auto", "cuda:1") and not graph.wanted("auto", "cpu")
    assert graph.wanted("on", "cpu") and not graph.wanted("off", "cuda")


@pytest.mark.slow
def test_the_compiled_step_trains_like_the_eager_one(root, gpt2_dir):
    """torch.compile (inductor, C++ on the CPU) inside the fixed-buffer step: the same losses to float
    rounding. Catches a compiled forward that skips the forces hook or the phantom rows."""
    eager = prepared(gpt2_dir, "eager", graph="on")
    loop.run(eager, progress=False)
    compiled = prepared(gpt2_dir, "compiled", graph="on", compile=True)
    loop.run(compiled, progress=False)
    a, b = logs(eager), logs(compiled)
    for key in ("loss", "grad_norm", "phantom_mass"):
        x, y = (np.array([float(r[key]) for r in m["metrics"]]) for m in (a, b))
        np.testing.assert_allclose(y, x, rtol=1e-4, err_msg=key)
    fa, fb = (np.load(cfg.run_dir / "forces.npy").view(np.float32) for cfg in (eager, compiled))
    np.testing.assert_allclose(fb[1:], fa[1:], rtol=1e-3, atol=1e-7)  # row 0 is NaN in both


@pytest.mark.slow
def test_the_gpu_script_runs_every_phase_dry(tmp_path, gpt2_dir):
    """bench/gpu.sh --dry: the three bench_train.py phases at tiny sizes on the CPU, their JSON sane."""
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--dry"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rounds, e2e, disk = (json.loads((tmp_path / f"{n}.json").read_text())
                         for n in ("train", "train-10pct", "train-100pct"))
    assert rounds["same_movie_every_round"] and "graph_speedup" in rounds
    assert rounds["reference"]["tokens_per_s"]["median"] > 0 and len(rounds["ratio_vs_reference"]["rounds"]) == 2
    steps = e2e["train"]["steps"]
    assert e2e["movie"] == {**e2e["movie"], "frames_verified": steps + 1, "all_frames": True,
                            "last_frame_is_checkpoint_W": True}
    assert e2e["analysis"]["frames_read"] == steps + 1 and e2e["analysis"]["plain_read"]["bytes"] > 0
    assert disk["movie"]["complete"] and disk["floor"]["bytes"] >= disk["movie"]["bytes"] > 0
    assert disk["ratio_vs_plain_write"] > 0 and (tmp_path / "gpu.log").exists()


@pytest.fixture
def gpt2(request):
    """DUCKLING_GPT2_DIR where bench/gpu.sh sets it (a GPU machine has no ../shared), else ../shared's."""
    env = os.environ.get("DUCKLING_GPT2_DIR")
    return Path(env) if env and (Path(env) / "vocab.json").exists() else request.getfixturevalue("gpt2_dir")


@cuda
def test_on_a_gpu_the_graph_run_repeats_its_bytes_and_tracks_the_eager_one(root, gpt2):
    """Catches a capture that fails or trains another step than eager, and a run that is not repeatable."""
    runs = [prepared(gpt2, name, graph=g) for name, g in (("g1", "on"), ("g2", "on"), ("eager", "off"))]
    for cfg in runs:
        assert loop.run(cfg, progress=False)["cuda_graph"] == (cfg.graph == "on")
    g1, g2, eager = (logs(cfg) for cfg in runs)
    assert g1["frames"] == g2["frames"] and g1["metrics"] == g2["metrics"]
    x, y = (np.array([float(r["loss"]) for r in m["metrics"]]) for m in (eager, g1))
    np.testing.assert_allclose(y, x, rtol=1e-2)
