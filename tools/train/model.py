"""The demo model: Qwen3-MoE computed exactly as llama.cpp's `qwen3moe` graph computes it.

Pinned environment: see tools/train/README.md (Debian python3-torch 1.13.1+dfsg-4).

Per layer (shapes as PyTorch stores them, [out, in]):
  attn_norm [D]                      RMSNorm before attention
  wq [H*Dh, D], wk [KV*Dh, D], wv [KV*Dh, D], wo [D, H*Dh]
  q_norm [Dh], k_norm [Dh]           RMSNorm over each head's vector, before RoPE
  ffn_norm [D]                       RMSNorm before the experts
  router [E, D]                      softmax over E -> top-k -> renormalise the k weights to sum 1
  gate [E, F, D], up [E, F, D], down [E, D, F]   SwiGLU experts, no shared expert
RoPE is NEOX style (the two halves of each head rotate together); K/V heads are shared by H/KV query
heads (query head h reads K/V head h // (H/KV)); the output head is tied to the token embedding.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_tables(n_pos: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Layer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d, h, kv, dh = cfg["n_embd"], cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]
        e, f = cfg["n_expert"], cfg["n_ff_exp"]
        self.cfg = cfg
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.wq = nn.Parameter(torch.empty(h * dh, d))
        self.wk = nn.Parameter(torch.empty(kv * dh, d))
        self.wv = nn.Parameter(torch.empty(kv * dh, d))
        self.wo = nn.Parameter(torch.empty(d, h * dh))
        self.q_norm = nn.Parameter(torch.ones(dh))
        self.k_norm = nn.Parameter(torch.ones(dh))
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.router = nn.Parameter(torch.empty(e, d))
        self.gate = nn.Parameter(torch.empty(e, f, d))
        self.up = nn.Parameter(torch.empty(e, f, d))
        self.down = nn.Parameter(torch.empty(e, d, f))

    def attention(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        b, t, _ = x.shape
        h, kv, dh, eps = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"], cfg["rms_eps"]
        q = (x @ self.wq.T).view(b, t, h, dh)
        k = (x @ self.wk.T).view(b, t, kv, dh)
        v = (x @ self.wv.T).view(b, t, kv, dh)
        q = apply_rope(rms_norm(q, self.q_norm, eps), cos[:t, None, :], sin[:t, None, :])
        k = apply_rope(rms_norm(k, self.k_norm, eps), cos[:t, None, :], sin[:t, None, :])
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        k = k.repeat_interleave(h // kv, dim=1)
        v = v.repeat_interleave(h // kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(b, t, h * dh) @ self.wo.T

    def moe(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (output, load-balancing loss, token count per expert)."""
        cfg = self.cfg
        e, k = cfg["n_expert"], cfg["n_expert_used"]
        flat = x.reshape(-1, x.shape[-1])
        probs = torch.softmax(flat @ self.router.T, dim=-1)
        top_w, top_i = probs.topk(k, dim=-1)
        top_w = top_w / top_w.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        counts = torch.bincount(top_i.reshape(-1), minlength=e)
        for expert in range(e):
            rows, slot = (top_i == expert).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            hx = flat[rows]
            act = F.silu(hx @ self.gate[expert].T) * (hx @ self.up[expert].T)
            y = act @ self.down[expert].T
            out.index_add_(0, rows, y * top_w[rows, slot, None])
        fraction = counts.float() / (flat.shape[0] * k)
        balance = e * (fraction * probs.mean(0)).sum()
        return out.view_as(x), balance, counts

    def forward(self, x, cos, sin):
        eps = self.cfg["rms_eps"]
        x = x + self.attention(rms_norm(x, self.attn_norm, eps), cos, sin)
        y, balance, counts = self.moe(rms_norm(x, self.ffn_norm, eps))
        return x + y, balance, counts


class MoeLM(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Parameter(torch.empty(cfg["n_vocab"], cfg["n_embd"]))
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["n_layer"]))
        self.out_norm = nn.Parameter(torch.ones(cfg["n_embd"]))
        cos, sin = rope_tables(cfg["n_ctx"], cfg["head_dim"], cfg["rope_base"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def init_weights(self, generator: torch.Generator) -> None:
        std = 0.02
        resid_std = std / math.sqrt(2 * self.cfg["n_layer"])
        with torch.no_grad():
            self.embed.normal_(0.0, std, generator=generator)
            for layer in self.layers:
                for w in (layer.wq, layer.wk, layer.wv, layer.router, layer.gate, layer.up):
                    w.normal_(0.0, std, generator=generator)
                for w in (layer.wo, layer.down):
                    w.normal_(0.0, resid_std, generator=generator)

    def forward(self, ids: torch.Tensor):
        """ids [B, T] -> (logits [B, T, V], mean balance loss, counts [L, E])."""
        x = self.embed[ids]
        balances, counts = [], []
        for layer in self.layers:
            x, balance, count = layer(x, self.cos, self.sin)
            balances.append(balance)
            counts.append(count)
        x = rms_norm(x, self.out_norm, self.cfg["rms_eps"])
        logits = x @ self.embed.T
        return logits, torch.stack(balances).mean(), torch.stack(counts)
