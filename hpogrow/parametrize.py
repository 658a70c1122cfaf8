"""μP bookkeeping with ``mup``: base shapes, building a model at a width, counting parameters."""

from __future__ import annotations

from dataclasses import dataclass

import mup
import torch
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.tasks.base import Task


def check_width(task: Task, width: int, what: str = "width") -> None:
    """Raise a one-line :class:`UsageError` unless ``task`` can be built at ``width``."""
    if width < 1 or width % task.width_step:
        nearest = max(1, round(width / task.width_step)) * task.width_step
        raise UsageError(
            f"{what} {width} is not a positive multiple of {task.width_step} "
            f"(the head size of task {task.name!r}); try {nearest}"
        )


def make_base_shapes(task: Task, base_width: int) -> dict:
    """mup base shapes of ``task`` at ``base_width``; the delta model is built at twice the width.

    Models are built on the ``meta`` device, so this allocates no memory.
    """
    check_width(task, base_width, "base width")
    with torch.device("meta"):
        base, delta = task.build_model(base_width), task.build_model(2 * base_width)
    return mup.make_base_shapes(base, delta)


def build_model(task: Task, width: int, base_width: int, seed: int,
                device: torch.device | str = "cpu") -> nn.Module:
    """A freshly μP-initialised model at ``width`` with base shapes from ``base_width``.

    Order matters (docs/method.md, "μP with mup"): build fresh, ``set_base_shapes(rescale_params=True)`` on the fresh
    init, then the task's μP init. The result is deterministic in ``seed``.
    """
    check_width(task, width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = task.build_model(width)
        mup.set_base_shapes(model, make_base_shapes(task, base_width), rescale_params=True)
        task.initialize(model)
    return model.to(device)


def build_standard_model(task: Task, width: int, seed: int, device: torch.device | str = "cpu") -> nn.Module:
    """The same architecture in standard parameterization (SP), for contrast with μP.

    PyTorch's default initialisation everywhere (the readout too: ``nn.Linear``'s, not a zero
    readout) and no width multipliers: the base shapes are the model's own, so every
    ``width_mult`` is 1 and mup's optimizers reduce to plain Adam(W) with one global learning
    rate. Deterministic in ``seed``.
    """
    check_width(task, width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = task.build_model(width)
        mup.set_base_shapes(model, None)
        for module in model.modules():
            if isinstance(module, mup.MuReadout):
                nn.Linear.reset_parameters(module)  # MuReadout's own reset would zero it
    return model.to(device)


def attach_base_shapes(model: nn.Module, base_shapes: dict | str) -> nn.Module:
    """Set ``infshape`` on a model whose weights are already trained (no rescaling)."""
    return mup.set_base_shapes(model, base_shapes, rescale_params=False)


@dataclass(frozen=True)
class ParameterCount:
    """``total`` counts every parameter (the growth factor is a ratio of totals, as in paper
    000); ``compute`` leaves out embedding lookup tables, which do no matmul work, and is the N
    in FLOPs = 6·N·D."""

    total: int
    compute: int


def count_parameters(model: nn.Module) -> ParameterCount:
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    total = sum(p.numel() for p in model.parameters())
    lookup = sum(p.numel() for p in model.parameters() if id(p) in embedding)
    return ParameterCount(total=total, compute=total - lookup)


def count_parameters_at(task: Task, width: int) -> ParameterCount:
    """Parameter counts of ``task``'s model at ``width`` without allocating it."""
    with torch.device("meta"):
        return count_parameters(task.build_model(width))


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise UsageError(f"--device {device}: {error}; use auto, cpu or cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
    return resolved
