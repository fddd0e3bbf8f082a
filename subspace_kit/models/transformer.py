"""The paper's Transformer: a 2-layer encoder, hidden 64, 8 heads, mean pooling, linear head.

Input: token ids ``(n, L)`` int64 where ``pad_id`` (0) marks padding; the mask is derived from
the ids, so ``model(X)`` and ``HessianOperator(model, loss, X, Y)`` need nothing else.

Choices the sources leave open [guess]: learned token and position embeddings; pre-LayerNorm
blocks ``x + Attn(LN(x))``, ``x + FF(LN(x))`` with a 4x-wide GELU feed-forward and a final
LayerNorm; no dropout (the loss must be a deterministic function of the parameters); mean over
the non-padded positions, then a linear head. PyTorch's default initialisation.

Attention is written with plain ``matmul`` and ``softmax`` rather than a fused
``scaled_dot_product_attention`` kernel: both HVP routes (double backward and
forward-over-reverse) need derivatives some fused kernels lack. Layer normalisation is written
with plain ops too: in torch 2.13 ``torch.func.hessian`` (``jacfwd(jacrev)``) returns a wrong,
non-symmetric Hessian through the fused ``layer_norm`` with an affine weight (its backward's
batching rule, pytorch/functorch#534), and users of a teaching kit will reach for it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LayerNorm(nn.Module):
    """``nn.LayerNorm`` over the last dimension (same parameters and initialisation), in plain ops."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        variance = (centred * centred).mean(dim=-1, keepdim=True)
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``(n, L, d)`` that ignores padded keys."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} must be divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)  # (n, heads, L, L)
        # Masked keys get the dtype's most negative value, not -inf: exp underflows to an exact 0
        # and no all-masked row can turn into NaN.
        scores = torch.where(mask[:, None, None, :], scores, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, length, dim))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_mult: int):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm(dim), LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.feed_forward = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), mask)
        return x + self.feed_forward(self.norm2(x))


class TextTransformer(nn.Module):
    """Encoder classifier over token ids ``(n, L)``; outputs ``(n, num_classes)``.

    ``input_shape`` is ``(max_len,)``; ``vocab_size`` and ``pad_id`` come from the data set's
    ``meta`` (``build_model(..., data=...)`` passes them).
    """

    data_keys = ("vocab_size", "pad_id")  # read from Dataset.meta by build_model(data=...)

    def __init__(self, *, input_shape, num_classes: int = 2, vocab_size: int | None = None, pad_id: int = 0,
                 dim: int = 64, heads: int = 8, layers: int = 2, ff_mult: int = 4):
        super().__init__()
        if vocab_size is None or vocab_size < 2:
            raise ValueError(f"vocab_size must be given (>= 2), e.g. from the data set's meta['vocab_size']; "
                             f"got {vocab_size!r}")
        if len(tuple(input_shape)) != 1:
            raise ValueError(f"input_shape must be (max_len,) for token ids; got {tuple(input_shape)}")
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(int(input_shape[0]), dim)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ff_mult) for _ in range(layers))
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id  # (n, L)
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(positions)
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        weights = mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)
