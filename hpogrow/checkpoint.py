"""Self-describing checkpoint folders, written atomically.

A folder holds ``model.pt`` (weights), ``optimizer.pt`` (when kept), ``config.yaml`` (task,
width, base width, seed, training config, lineage and owner), ``base_shapes.yaml`` (mup's base
shapes) and ``state.json`` (step, tokens seen, data position, passes over the training data,
losses, parameter counts). ``grow`` and ``train`` rebuild the model from the folder alone.

The owner (storage key, study and trial of the run that wrote it) lets the pipeline refuse a
folder that another search has written over (:func:`check_owner`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mup
import torch
import yaml
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.parametrize import attach_base_shapes, make_base_shapes
from hpogrow.tasks import Task, task_from_spec
from hpogrow.train import TrainState

_FILES = ("model.pt", "config.yaml", "base_shapes.yaml", "state.json")


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint folder says about itself (weights are loaded by :func:`load_model`)."""

    path: Path
    config: dict[str, Any]
    state: TrainState
    metrics: dict[str, Any]

    @property
    def width(self) -> int:
        return int(self.config["width"])

    @property
    def base_width(self) -> int:
        return int(self.config["base_width"])


def save_checkpoint(path: str | Path, model: nn.Module, *, task: Task, width: int, base_width: int,
                    seed: int, state: TrainState, metrics: dict[str, Any] | None = None,
                    train_config: Any = None, optimizer: torch.optim.Optimizer | None = None,
                    optimizer_state: dict | None = None, lineage: dict[str, Any] | None = None,
                    owner: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically: everything goes to a temporary folder beside
    ``path`` that is renamed into place only when complete; an existing folder is replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, staging / "model.pt")
        if optimizer is not None or optimizer_state is not None:
            torch.save(optimizer_state or optimizer.state_dict(), staging / "optimizer.pt")
        config = {
            "task": task.describe(), "width": width, "base_width": base_width, "seed": seed,
            "train": _plain(dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else train_config),
            "lineage": lineage, "data": task.data_summary(), "owner": owner,
        }
        (staging / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        mup.shape.save_base_shapes(make_base_shapes(task, base_width), str(staging / "base_shapes.yaml"))
        passes = task.data_passes(state.data_position)  # above 1: the stream re-read training data
        (staging / "state.json").write_text(json.dumps(
            {**dataclasses.asdict(state), **({} if passes is None else {"data_passes": round(passes, 4)}),
             **(metrics or {})}, indent=2))
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(staging, path)
            shutil.rmtree(retired)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _plain(value: Any) -> Any:
    """Lists instead of tuples, so that YAML's safe dumper takes it."""
    return json.loads(json.dumps(value))


def check_owner(path: str | Path, storage_key: str, study: str, trial: int) -> Checkpoint:
    """Read the checkpoint that trial ``trial`` of ``study`` names and make sure that trial wrote it.

    Raises:
        UsageError: the folder belongs to another storage, study or trial (another search wrote
            over it, or the record points at a folder it does not own).
    """
    checkpoint = read_checkpoint(path)
    owner = checkpoint.config.get("owner") or {}
    expected = {"storage_key": storage_key, "study": study, "trial": trial}
    if owner != expected:
        found = (f"storage {owner.get('storage_key')}, study {owner.get('study')!r}, trial {owner.get('trial')}"
                 if owner else "no owner")
        raise UsageError(f"checkpoint {checkpoint.path} belongs to {found}, not to trial {trial} of {study!r} in "
                         f"storage {storage_key}: something else wrote over it; rerun the search with a new --study")
    return checkpoint


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint's description; one-line :class:`UsageError` if it is not one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"checkpoint {path} is a file, not a checkpoint folder written by hpogrow; pass a folder "
                         "written by 'hpogrow search' or 'hpogrow train'")
    if not path.is_dir():
        raise UsageError(f"checkpoint {path} does not exist; pass a folder written by 'hpogrow search' or 'hpogrow train'")
    missing = [name for name in _FILES if not (path / name).exists()]
    if len(missing) == len(_FILES):
        raise UsageError(f"checkpoint {path} is not a checkpoint folder written by hpogrow (it has no "
                         f"{', '.join(_FILES)}); pass a folder written by 'hpogrow search' or 'hpogrow train'")
    if missing:
        raise UsageError(f"checkpoint {path} is incomplete (missing {', '.join(missing)}); pass a folder written by hpogrow")
    config = yaml.safe_load((path / "config.yaml").read_text())
    raw_state = json.loads((path / "state.json").read_text())
    fields = {f.name for f in dataclasses.fields(TrainState)}
    state = TrainState(**{k: v for k, v in raw_state.items() if k in fields})
    metrics = {k: v for k, v in raw_state.items() if k not in fields}
    return Checkpoint(path=path, config=config, state=state, metrics=metrics)


def reachable_checkpoint(path: str | Path, written_by: str) -> Path:
    """``path``, checked to be a whole checkpoint folder that this process can read.

    On a multi-node Ray cluster every trial writes its checkpoint on the node it runs on, at the
    path the driver chose under ``--workdir``; the driver reads it to grow the winner, and the
    nodes that run the target runs read the grown one. That works only when ``--workdir`` is on
    storage every node (and the driver's machine) mounts at the same path.

    Args:
        path: the checkpoint folder a trial recorded.
        written_by: who wrote it, for the message (e.g. ``trial 3 of lm-w128/base on Ray node 6f1c…``).

    Raises:
        UsageError: one line naming the folder and what a multi-node run needs.
    """
    folder = Path(path)
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:
        found = "is not on this machine" if not folder.exists() else f"lacks {', '.join(missing)} here"
        raise UsageError(f"the checkpoint of {written_by}, {folder}, {found}; on several machines, put --workdir "
                         "(and --ray-storage) on storage that every node mounts at the same path")
    return folder


def load_model(checkpoint: Checkpoint | str | Path, task: Task | None = None,
               device: torch.device | str = "cpu") -> tuple[nn.Module, Task]:
    """Rebuild the model of a checkpoint with its base shapes and trained weights.

    Args:
        task: needed only for checkpoints of custom tasks; built-in tasks come from the folder.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    task = task or task_from_spec(checkpoint.config["task"])
    if task.describe()["name"] != checkpoint.config["task"]["name"]:
        raise UsageError(f"checkpoint {checkpoint.path} belongs to task {checkpoint.config['task']['name']!r}, not {task.name!r}")
    model = task.build_model(checkpoint.width)
    weights = torch.load(checkpoint.path / "model.pt", map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise UsageError(f"checkpoint {checkpoint.path} does not match its config (width {checkpoint.width}): {first}") from None
    attach_base_shapes(model, str(checkpoint.path / "base_shapes.yaml"))
    return model.to(device), task


def load_optimizer_state(checkpoint: Checkpoint) -> dict | None:
    path = checkpoint.path / "optimizer.pt"
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
