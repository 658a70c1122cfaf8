"""A norm-free residual MLP in μP, for the power-law Fourier regression task (paper 000)."""

from __future__ import annotations

from dataclasses import dataclass

import mup
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ResidualMLPConfig:
    """Shape of the residual MLP; ``width`` is the μP-scaled dimension."""

    width: int
    """Hidden width of every residual block."""
    depth: int = 2
    """Number of residual blocks ``x + fc2(relu(fc1(x)))``."""
    in_features: int = 8
    """Input dimension (8 for the Fourier target)."""

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError("width and depth must be at least 1")


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.relu(self.fc1(x)))


class ResidualMLP(nn.Module):
    """``forward(x)`` maps inputs ``(B, in_features)`` to predictions ``(B,)``.

    No normalisation layers, so zero-padding with readout compensation preserves its function
    exactly (the property hpogrow's growth tests rely on).
    """

    def __init__(self, config: ResidualMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.in_features, config.width)
        self.blocks = nn.ModuleList(ResidualBlock(config.width) for _ in range(config.depth))
        self.readout = mup.MuReadout(config.width, 1, readout_zero_init=True)

    def initialize(self) -> None:
        """μP initialisation: weights N(0, 1/fan_in), biases zero, readout zero."""
        for name, parameter in self.named_parameters():
            if name.endswith("bias") or name.startswith("readout"):
                nn.init.zeros_(parameter)
            else:
                nn.init.normal_(parameter, std=parameter.shape[1] ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)  # (B, W)
        for block in self.blocks:
            h = block(h)
        return self.readout(h).squeeze(-1)  # (B,)
