"""What the growth tests share: tiny tasks, weights that look trained, and a float64 switch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from hpogrow.tasks import FourierTask, LanguageTask

GPT = LanguageTask(depth=2, head_size=8, seq_len=16, eval_tokens=512)
"""A two-block GPT (head size 8, 16-token context) on the standard-library corpus."""
MLP = FourierTask(depth=2, modes=64, eval_examples=256)
"""The norm-free residual MLP on a cheap Fourier target."""


def trained_like(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give every parameter non-trivial values, as training would (readout and query included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.3 + 0.1)
    return model


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Build and run models in float64 (exactness checks)."""
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(torch.float32)


def max_difference(task, base: torch.nn.Module, grown: torch.nn.Module) -> float:
    """Largest output difference of two models on one training batch."""
    batch = task.batch(0, 16, torch.device("cpu"))
    with torch.no_grad():
        return (grown(batch[0]).double() - base(batch[0]).double()).abs().max().item()
