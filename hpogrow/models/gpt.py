"""A GPT-style decoder in μP (pre-norm, fixed head size, head count growing with width).

Follows mup's Transformer example: ``MuReadout`` output layer, zero-initialised readout and
query, and attention scaled by ``attn_mult / head_size`` (``1/d_head`` instead of
``1/sqrt(d_head)``). Width is ``n_heads * head_size``; growing width adds heads.

Query, key and value are separate ``Linear`` layers so that zero-padding a weight keeps every
head's rows together (a fused ``qkv`` matrix would mix q, k and v blocks when padded).
"""

from __future__ import annotations

from dataclasses import dataclass

import mup
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the decoder; ``width`` is the μP-scaled dimension."""

    width: int
    """Model dimension; a multiple of ``head_size``."""
    depth: int = 2
    """Number of transformer blocks."""
    head_size: int = 32
    """Size of one attention head (fixed across widths)."""
    seq_len: int = 128
    """Context length in tokens."""
    vocab_size: int = 256
    """Vocabulary size (256 for byte-level tokens)."""
    mlp_ratio: int = 4
    """Hidden size of the feed-forward layer as a multiple of ``width``."""
    attn_mult: float = 8.0
    """Attention logits are ``attn_mult / head_size * q·k`` (mup's ``8/d`` convention)."""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.width % self.head_size:
            raise ValueError(
                f"width {self.width} is not a positive multiple of the head size {self.head_size}; "
                f"pick a width such as {max(1, round(self.width / self.head_size)) * self.head_size}"
            )
        if self.depth < 1 or self.seq_len < 1:
            raise ValueError("depth and seq_len must be at least 1")

    @property
    def n_heads(self) -> int:
        return self.width // self.head_size


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.query = nn.Linear(config.width, config.width, bias=False)
        self.key = nn.Linear(config.width, config.width, bias=False)
        self.value = nn.Linear(config.width, config.width, bias=False)
        self.proj = nn.Linear(config.width, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape  # (B, T, W)
        heads, head_size = self.config.n_heads, self.config.head_size

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, T, W) -> (B, H, T, hs)
            return t.view(batch, time, heads, head_size).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.config.attn_mult / head_size
        )
        return self.proj(y.transpose(1, 2).reshape(batch, time, width))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.width, config.mlp_ratio * config.width, bias=False)
        self.proj = nn.Linear(config.mlp_ratio * config.width, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.width, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Byte-level decoder. ``forward(idx)`` maps tokens ``(B, T)`` to logits ``(B, T, V)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.seq_len, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.ln_f = nn.LayerNorm(config.width, bias=False)
        self.readout = mup.MuReadout(config.width, config.vocab_size, bias=False, readout_zero_init=True)

    def initialize(self) -> None:
        """μP initialisation; call after ``mup.set_base_shapes``.

        Embeddings N(0, 1) (vector-like: constant in width); hidden matrices N(0, 1/fan_in),
        output projections additionally divided by sqrt(2·depth); query and readout zero;
        LayerNorm gains one.
        """
        residual_scale = (2 * self.config.depth) ** -0.5
        for name, parameter in self.named_parameters():
            if name.endswith("embedding.weight"):
                mup.init.normal_(parameter, std=1.0)
            elif name.startswith("ln") or ".ln_" in name:
                nn.init.ones_(parameter)
            elif name == "readout.weight" or name.endswith("query.weight"):
                nn.init.zeros_(parameter)
            else:
                scale = residual_scale if name.endswith("proj.weight") else 1.0
                nn.init.normal_(parameter, std=scale * parameter.shape[1] ** -0.5)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, T, W)
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln_f(x))  # (B, T, V)
