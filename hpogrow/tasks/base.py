"""The extension point for custom objectives: a model family in μP plus its data.

A :class:`Task` says how to build a model at a given width, how to draw the ``position``-th batch
of its training stream, and how to compute the loss. hpogrow does the rest: μP base shapes,
search, growth, warmstarted and scratch training, accounting and the Optuna record.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

Batch = Any
"""Whatever a task's ``batch`` returns and its ``loss`` accepts (tensors already on ``device``)."""


class Task(ABC):
    """A model family and its data. Subclass it to bring your own objective.

    Example (CPU, a few seconds)::

        import torch, mup
        from torch import nn
        import hpogrow

        class Regression(hpogrow.Task):
            name = "toy-regression"

            def build_model(self, width):
                return nn.Sequential(nn.Linear(4, width), nn.Tanh(), mup.MuReadout(width, 1))

            def batch(self, position, batch_size, device):
                g = torch.Generator().manual_seed(position)
                x = torch.randn(batch_size, 4, generator=g)
                return x.to(device), x.sum(dim=1, keepdim=True).sin().to(device)

            def loss(self, model, batch):
                x, y = batch
                return nn.functional.mse_loss(model(x), y)

    Attributes:
        name: short identifier stored with studies and checkpoints.
        width_step: widths this family can be built at are multiples of it.
        tokens_per_example: tokens (or samples) one example of a batch counts for.
        block_prefix: where the model keeps its residual blocks (``blocks.0``, ``blocks.1``, …).
    """

    name: str = "custom"
    width_step: int = 1
    tokens_per_example: int = 1
    block_prefix: str = "blocks"
    residual_outputs: tuple[str, ...] = ()
    """Names, inside a block, of the parameters whose zeroing makes the block the identity
    (declare them, with :meth:`with_depth`, to allow depth growth)."""

    @abstractmethod
    def build_model(self, width: int) -> nn.Module:
        """A fresh model at ``width`` whose output layer is a ``mup.MuReadout``.

        hpogrow calls ``mup.set_base_shapes`` on it and then :meth:`initialize`.
        """

    @abstractmethod
    def batch(self, position: int, batch_size: int, device: torch.device) -> Batch:
        """Examples ``position .. position + batch_size - 1`` of the training stream.

        Must be deterministic in ``position`` so that a run can continue where another stopped.
        """

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Scalar training loss of ``model`` on ``batch``."""

    def with_depth(self, depth: int) -> Task:
        """The same task with ``depth`` residual blocks (needed for depth growth only)."""
        from hpogrow.errors import UsageError

        raise UsageError(f"task {self.name!r} cannot be built at another depth; implement Task.with_depth")

    def initialize(self, model: nn.Module) -> None:
        """μP initialisation of a model whose base shapes are set. Default: the model's own
        ``initialize()`` if it has one, else the PyTorch init that ``set_base_shapes`` rescaled."""
        init = getattr(model, "initialize", None)
        if callable(init):
            init()

    def eval_batches(self, device: torch.device) -> list[Batch]:
        """The fixed held-out set. Default: four batches of 256 drawn far from training data."""
        return [self.batch(-(index + 1) * 256, 256, device) for index in range(4)]

    def eval_losses(self, model: nn.Module, batches: list[Batch]) -> torch.Tensor:
        """Held-out loss of each evaluation unit, ``(N,)``, all weighted equally: their mean is the
        validation loss and their spread its standard error. Default: one unit per batch (its
        mean loss); tasks that can, return one per example (or per sequence)."""
        return torch.stack([self.loss(model, batch).float() for batch in batches])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: list[Batch]) -> float:
        """Mean loss of ``model`` over ``batches`` (the mean of :meth:`eval_losses`)."""
        return float(self.eval_losses(model, batches).mean())

    def describe(self) -> dict[str, Any]:
        """What to store with a checkpoint so that :func:`hpogrow.tasks.task_from_spec` can
        rebuild this task; custom tasks are rebuilt by passing the task object again."""
        return {"name": self.name}

    def data_summary(self) -> dict[str, Any]:
        """Facts about the data recorded with every run (source, hash, sizes)."""
        return {}

    def training_windows(self) -> int | None:
        """Examples in the training stream before it repeats; ``None`` for a stream that never
        does (generated data) or whose size is unknown. The token-supply check uses it."""
        return None

    def data_passes(self, data_position: int) -> float | None:
        """Passes over the training examples that a stream read up to ``data_position`` has made
        (above 1: some example was read twice); ``None`` when the stream never repeats."""
        windows = self.training_windows()
        return None if windows is None else data_position / windows


@torch.no_grad()
def validation_loss(task: Task, model: nn.Module, batches: list[Batch]) -> tuple[float, float | None]:
    """``task``'s validation loss of ``model`` and its standard error over the eval set's units
    (:meth:`Task.eval_losses`): how far the figure would move on another eval set of the same
    size. The error is ``None`` with a single unit, or for a task that overrides
    :meth:`Task.evaluate` (its own loss, whose units hpogrow does not know)."""
    if type(task).evaluate is not Task.evaluate:
        return task.evaluate(model, batches), None
    losses = task.eval_losses(model, batches).double()  # (N,)
    error = float(losses.std() / math.sqrt(len(losses))) if len(losses) > 1 else None
    return float(losses.mean()), error
