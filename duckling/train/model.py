"""The Duckling model: a small GPT-style decoder (STUDY.md section 1).

Pre-LayerNorm blocks, causal attention through scaled_dot_product_attention, learned positions,
and a tied input/output embedding W with `rows` rows, of which rows >= live_vocab are phantom:
no input ever looks them up and no target ever names them, so only the softmax (and weight
decay) moves them.

Initialisation (seeded by the caller): every weight matrix ~ N(0, init_std), the two residual
projections of each block ~ N(0, init_std / sqrt(2 n_layer)) as in GPT-2, biases 0, LayerNorm
gains 1. Phantom rows are initialised exactly like every other row of W.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from duckling.config import Config


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, cfg.d_ff), nn.Linear(cfg.d_ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.rows, cfg.d_model)
        self.wpe = nn.Embedding(cfg.ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = None if cfg.tied else nn.Linear(cfg.d_model, cfg.rows, bias=False)
        self.reset_parameters()
        n = sum(p.numel() for p in self.parameters())
        assert n == cfg.n_params, f"parameter count {n} != config's {cfg.n_params}"

    def reset_parameters(self) -> None:
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if p.dim() == 2:
                resid = name.endswith(("proj.weight", "down.weight"))
                nn.init.normal_(p, std=std / math.sqrt(2 * self.cfg.n_layer) if resid else std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)

    @property
    def W(self) -> torch.Tensor:
        """The recorded embedding matrix (the input embedding; also the output one when tied)."""
        return self.wte.weight

    @property
    def W_out(self) -> torch.Tensor:
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits over all `rows` ids, phantom ones included: that softmax is what moves them."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        return F.linear(self.ln_f(x), self.W_out)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, n: int, temperature: float = 0.0, top_k: int = 0,
                 generator: torch.Generator | None = None, stop_id: int | None = None) -> torch.Tensor:
        """Greedy (temperature 0) or sampled continuation, restricted to live ids."""
        live = self.cfg.live_vocab
        for _ in range(n):
            logits = self(idx[:, -self.cfg.ctx:])[:, -1, :live].float()
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = logits.topk(top_k, dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator).to(idx.device)
            idx = torch.cat([idx, nxt], dim=1)
            if stop_id is not None and bool((nxt == stop_id).all()):
                break
        return idx


def phantom_mass_from_grad(grad_logits: torch.Tensor, live_vocab: int) -> torch.Tensor:
    """The same mass, free, from the gradient of the mean cross-entropy over N positions:
    dL/dz_nj = (p_nj - 1[j = y_n]) / N, and no target is ever a phantom id, so
    sum_n sum_{j >= live} dL/dz_nj = (1/N) sum_n p_phantom,n."""
    return grad_logits[..., live_vocab:].sum(dtype=torch.float32)


def phantom_mass(logits: torch.Tensor, live_vocab: int) -> torch.Tensor:
    """Softmax probability on phantom ids, averaged over positions: the force that moves them.

    p_phantom = exp(logsumexp(z[live:]) - logsumexp(z)), computed in fp32.
    """
    z = logits.detach().float().flatten(0, -2)
    if z.shape[-1] <= live_vocab:
        return z.new_zeros(())
    return (torch.logsumexp(z[:, live_vocab:], -1) - torch.logsumexp(z, -1)).exp().mean()
