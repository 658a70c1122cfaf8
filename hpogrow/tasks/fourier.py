"""Regression of a power-law Fourier target with the μP residual MLP (``--task mlp``).

The target follows paper 000's MLP benchmark (Qiu et al. 2025): input dimension 8, 10,000
modes, frequency magnitude ``s = (1-u)^(-1/alpha)`` with ``alpha = 2``, direction uniform on the
sphere, integer frequencies ``k = round(s·v)``, coefficients normalised to unit L2 norm, phases
in {0, π/2}; ``y(x) = Σ w_i √2 cos(2π k_i·x + b_i)`` for ``x ~ U[-0.5, 0.5]^8``. Fresh inputs
every batch; loss ``½(ŷ - y)²``. One example counts as one "token".
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hpogrow.models.mlp import ResidualMLP, ResidualMLPConfig
from hpogrow.tasks.base import Task

_EVAL_OFFSET = 1 << 40  # positions of the held-out set, far beyond any training stream


class FourierTarget:
    """The random target function, fixed by ``seed``."""

    def __init__(self, in_features: int = 8, modes: int = 10_000, alpha: float = 2.0, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        u = torch.rand(modes, generator=generator, dtype=torch.float64)
        magnitude = (1 - u) ** (-1 / alpha)  # (M,)
        direction = torch.randn(modes, in_features, generator=generator, dtype=torch.float64)
        direction /= direction.norm(dim=1, keepdim=True)
        self.frequencies = torch.round(magnitude[:, None] * direction)  # (M, D) integers
        weights = torch.randn(modes, generator=generator, dtype=torch.float64)
        self.weights = weights / weights.norm()  # (M,)
        self.phases = (torch.rand(modes, generator=generator) < 0.5).double() * (math.pi / 2)
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, D) -> y (B,)`` in float64, computed on ``x``'s device."""
        frequencies, phases, weights = self._tensors_on(x.device)
        angles = 2 * math.pi * x.double() @ frequencies.T + phases  # (B, M)
        return math.sqrt(2) * torch.cos(angles) @ weights

    def _tensors_on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._on_device:
            self._on_device[device] = tuple(t.to(device) for t in (self.frequencies, self.phases, self.weights))
        return self._on_device[device]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the copies on accelerators."""
        return {**self.__dict__, "_on_device": {}}


class FourierTask(Task):
    """The residual MLP on the Fourier target.

    Args:
        depth: residual blocks.
        seed: seed of the target function; inputs are drawn from ``(seed, position)``.
        eval_examples: size of the fixed held-out set.
        modes: Fourier modes of the target (10,000 in paper 000; fewer for quick tests).
    """

    residual_outputs = ("fc2.weight", "fc2.bias")
    name = "mlp"

    def __init__(self, depth: int = 2, seed: int = 0, eval_examples: int = 4096, modes: int = 10_000) -> None:
        self.depth, self.seed, self.eval_examples, self.modes = depth, seed, eval_examples, modes
        self.target = FourierTarget(modes=modes, seed=seed)

    def build_model(self, width: int) -> nn.Module:
        return ResidualMLP(ResidualMLPConfig(width=width, depth=self.depth))

    def batch(self, position: int, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + position)
        x = torch.rand(batch_size, 8, generator=generator) - 0.5  # (B, 8)
        if device.type == "cuda":  # page-locked, so that the copy does not wait for the GPU
            x = x.pin_memory()
        x = x.to(device, non_blocking=True)
        return x, self.target(x).float()  # the target is computed where the model runs

    def eval_batches(self, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [self.batch(_EVAL_OFFSET, self.eval_examples, device)]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return 0.5 * (model(x).float() - y).pow(2).mean()

    def eval_losses(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Loss of each held-out example, ``(N,)``."""
        return torch.cat([0.5 * (model(x).float() - y).pow(2).reshape(len(x), -1).mean(dim=1) for x, y in batches])

    def with_depth(self, depth: int) -> Task:
        return type(self)(**{k: v for k, v in {**self.describe(), "depth": depth}.items() if k != "name"})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "depth": self.depth, "seed": self.seed, "eval_examples": self.eval_examples,
                "modes": self.modes}

    def data_summary(self) -> dict[str, Any]:
        return {"source": "power-law Fourier target (paper 000)", "modes": self.modes, "alpha": 2.0, "seed": self.seed}
