"""Partial checkpoints of target runs: enough to continue a run exactly after any fault.

A warmstarted, scratch or stage run writes one folder (a checkpoint folder of
:mod:`hpogrow.checkpoint`, replaced atomically each time) every ``every`` evaluations and at its
last: the weights, the optimizer (Adam moments and each group's learning rate), the step, tokens
and data position (the learning-rate schedule is a function of the step, the batches of the data
position), the evaluations so far and the token counts at which it was resumed before. A run
given that folder continues from it and ends with the weights and curve of an uninterrupted run
(bit-identical on CPU).

A folder is used only by the run that wrote it: the same owner (storage, study, trial) and the
same :func:`fingerprint` (training configuration without the device, start position, what it
started from). Any other is refused and the run starts from token 0 (and then writes over it).

With 16 evaluations a run (the default) and ``every = 1``, a fault costs at most 1/16 of a run
(6.25%); a checkpoint costs one write of the weights and the two Adam moments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpogrow.checkpoint import load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.tasks import Task
from hpogrow.train import Evaluation, TrainConfig, TrainState

_UNCHECKED = ("device", "compile")
"""What may differ between the writer and the resumer (a retry may land on another node)."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a run keeps its partial checkpoint, and every how many evaluations it writes it."""

    folder: Path
    every: int = 1

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"checkpoint interval must be at least 1 evaluation, got {self.every}")


@dataclass(frozen=True)
class Resumed:
    """What a partial checkpoint restores."""

    weights: dict[str, torch.Tensor]
    optimizer_state: dict
    state: TrainState
    evaluations: list[Evaluation]
    resumed_at: list[int]
    """Token counts of every resume so far, this one (``state.tokens_seen``) included."""


def fingerprint(config: TrainConfig, start: TrainState, source: str, width: int) -> dict[str, Any]:
    """What makes a partial checkpoint this run's: its training configuration (without the
    device), where it started in the data stream, what it started from and its width."""
    train = {key: value for key, value in dataclasses.asdict(config).items() if key not in _UNCHECKED}
    train["eval_tokens"] = list(train["eval_tokens"])
    return {"train": train, "start_position": start.data_position, "source": source, "width": width}


def load(point: ResumePoint, owner: dict[str, Any] | None, expected: dict[str, Any]) -> tuple[Resumed | None, str | None]:
    """The run's partial checkpoint, or ``None`` with the reason it was refused (``None, None``:
    there is none)."""
    folder = Path(point.folder)
    if not folder.exists():
        return None, None
    try:
        checkpoint = read_checkpoint(folder)
    except Exception as error:  # a folder that is not one (or half of one) is never used
        return None, f"{folder} is not a partial checkpoint ({error})"
    found_owner, found = checkpoint.config.get("owner"), checkpoint.metrics.get("fingerprint")
    if found_owner != owner:
        return None, f"{folder} belongs to {found_owner}, not to {owner}"
    if found != expected:
        differing = sorted(key for key in set(expected) | set(found or {}) if (found or {}).get(key) != expected.get(key))
        return None, f"{folder} was written by another configuration (differs in {', '.join(differing)})"
    weights = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    evaluations = [Evaluation(**e) for e in checkpoint.metrics["evaluations"]]
    resumed_at = [*checkpoint.metrics.get("resumed_at", []), checkpoint.state.tokens_seen]
    return Resumed(weights, load_optimizer_state(checkpoint), checkpoint.state, evaluations, resumed_at), None


def save(point: ResumePoint, model: nn.Module, optimizer: torch.optim.Optimizer, *, task: Task, width: int,
         base_width: int, config: TrainConfig, state: TrainState, evaluations: list[Evaluation],
         resumed_at: list[int], owner: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    """Replace the run's partial checkpoint with this moment's (atomically)."""
    save_checkpoint(point.folder, model, task=task, width=width, base_width=base_width, seed=config.seed,
                    state=state, train_config=config, optimizer=optimizer, owner=owner,
                    metrics={"fingerprint": expected, "resumed_at": resumed_at,
                             "evaluations": [dataclasses.asdict(e) for e in evaluations]})
