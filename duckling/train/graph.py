"""The training step as one CUDA graph: captured once, then replayed, one launch per step.

The model is tiny (about 0.1 TFLOP a step), so on a big GPU an eager step is bound by launching its
several hundred kernels from Python, not by the kernels. A graph replays them without Python. That
needs every tensor the step touches at a fixed address, and no host value inside the step:

- the batch is gathered on the device from a 0-d step tensor (`Batches.gather`);
- the learning rate is a 0-d tensor in every parameter group (fused AdamW reads it on the device,
  `capturable=True` keeps its step counts there too), filled before each replay;
- the loss, grad norm and phantom mass land in one (3,) tensor, the forces in `Forces.cur`;
- the gradients, the phantom-mass hook's output, pure-bf16's rounding, the clipping: all inside.

Capture records kernels and runs none of them, so it costs no training step. Before it, WARMUP steps
run eagerly on a side stream (lazy initialisation, AdamW's state and cuBLAS's workspaces must exist
before capture, and the CUDA graphs notes ask for a side stream). On a CPU there is nothing to
capture: the same fixed-buffer step runs eagerly, which lets the tests hold it to the plain loop.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

WARMUP = 3  # eager steps before the capture


class GraphStep:
    """`step(i, lr, slot)` -> (loss, grad norm), like the plain loop's step, with the phantom mass in
    slot[2]; `body(xy, lr, out)` is the plain step (loop.train_step) on the buffers given to it."""

    def __init__(self, body: Callable, batches, opt: torch.optim.Optimizer, device: str):
        self.body, self.batches = body, batches
        self.cuda = torch.device(device).type == "cuda"
        self.step_t = torch.zeros((), dtype=torch.long, device=device)
        # CUDA's fused AdamW reads a float32 lr; on the CPU a float64 one gives the float's own bits
        self.lr = torch.zeros((), dtype=torch.float32 if self.cuda else torch.float64, device=device)
        for g in opt.param_groups:
            g["lr"] = self.lr
        self.out = torch.zeros(3, device=device)  # loss, grad norm, phantom mass
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self.side = torch.cuda.Stream(device) if self.cuda else None

    def _step(self) -> None:
        """What the graph holds: one optimizer step on the fixed buffers."""
        loss, gnorm = self.body(self.batches.gather(self.step_t), self.lr, self.out)
        self.out[0].copy_(loss.detach())
        self.out[1].copy_(gnorm)

    def _warm(self) -> None:
        main = torch.cuda.current_stream()
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):
            self._step()
        main.wait_stream(self.side)
        self.eager_steps += 1

    def __call__(self, step: int, lr: float, slot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.step_t.fill_(step)  # kernels with the value as an argument: no copy, no sync
        self.lr.fill_(lr)
        if not self.cuda:
            self._step()
        elif self.graph is not None:
            self.graph.replay()
        elif self.eager_steps < WARMUP:
            self._warm()
        else:
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: the movie writer's thread may wait on its copy events meanwhile
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self._step()
            self.graph.replay()
        slot[2].copy_(self.out[2])
        return self.out[0], self.out[1]


def wanted(graph: str, device: str) -> bool:
    """Whether a run uses the fixed-buffer step: `auto` on CUDA only, `on` everywhere, `off` nowhere."""
    return graph == "on" or (graph == "auto" and torch.device(device).type == "cuda")
