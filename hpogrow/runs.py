"""Training runs as the pipeline needs them: a base trial at the base width, a warmstarted
run from a grown checkpoint, and a from-scratch run. Each returns a :class:`RunOutcome`.

These are plain, picklable callables so that any executor (in-process, Ray) can run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.parametrize import build_model, count_parameters, resolve_device
from hpogrow.tasks import Task
from hpogrow.train import Evaluation, Report, TrainConfig, TrainState, make_optimizer, train


@dataclass
class RunOutcome:
    evaluations: list[Evaluation]
    state: TrainState
    stopped_early: bool
    n_params: int
    compute_params: int
    tokens_per_second: float
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        return self.evaluations[-1].val_loss

    @property
    def flops(self) -> float:
        """6·N·D with N the compute parameters (no embedding tables) and D this run's tokens."""
        return 6.0 * self.compute_params * self.state.tokens_seen


def run_training(task: Task, model, config: TrainConfig, *, width: int, base_width: int,
                 checkpoint: Path | None, state: TrainState = TrainState(), report: Report | None = None,
                 progress=None, description: str = "train", lineage: dict | None = None,
                 optimizer_state: dict | None = None) -> RunOutcome:
    """Train ``model`` and, when it ran its full budget, write its checkpoint.

    ``optimizer_state`` (e.g. Adam moments carried through growth) seeds the optimizer.
    """
    optimizer = None
    if optimizer_state is not None:
        optimizer = make_optimizer(model.to(resolve_device(config.device)), config)
        optimizer.load_state_dict(optimizer_state)
    result = train(model, task, config, state=state, optimizer=optimizer, report=report, progress=progress,
                   description=description)
    counts = count_parameters(model)
    outcome = RunOutcome(result.evaluations, result.state, result.stopped_early, counts.total,
                         counts.compute, result.tokens_per_second,
                         extra={} if result.mfu is None else {"mfu": result.mfu})
    passes = task.data_passes(result.state.data_position)  # recorded as the trial's user attribute
    if passes is not None:
        outcome.extra["data_passes"] = round(passes, 4)
    if checkpoint is not None and not result.stopped_early:
        outcome.checkpoint = save_checkpoint(
            checkpoint, model, task=task, width=width, base_width=base_width, seed=config.seed,
            state=result.state, train_config=config, optimizer=result.optimizer, lineage=lineage,
            metrics={"val_loss": outcome.final_loss, "n_params": counts.total,
                     "compute_params": counts.compute, "flops": outcome.flops})
    return outcome


@dataclass(frozen=True)
class BaseTrial:
    """One base-width trial: fresh μP model, hyperparameters from the sampler."""

    task: Task
    base_width: int
    template: TrainConfig
    """Budget and everything but ``learning_rate`` and ``batch_size``."""
    checkpoint_dir: Path

    def __call__(self, params: dict[str, Any], report: Report | None, trial_number: int,
                 progress=None) -> RunOutcome:
        config = replace(self.template, learning_rate=params["learning_rate"], batch_size=params["batch_size"])
        model = build_model(self.task, self.base_width, self.base_width, config.seed)
        return run_training(self.task, model, config, width=self.base_width, base_width=self.base_width,
                            checkpoint=self.checkpoint_dir / f"trial-{trial_number}", report=report,
                            progress=progress, description=f"base trial {trial_number}")


def run_warmstart(task: Task, grown: Path, config: TrainConfig, checkpoint: Path | None,
                  report: Report | None = None, progress=None) -> RunOutcome:
    """Train a grown checkpoint continuing the base's token stream (fresh optimizer unless the
    grown folder carries optimizer state)."""
    source = read_checkpoint(grown)
    model, task = load_model(source, task)
    return run_training(task, model, config, width=source.width, base_width=source.base_width,
                        checkpoint=checkpoint, state=TrainState(data_position=source.state.data_position),
                        report=report, progress=progress, description=f"warmstart w{source.width}",
                        lineage=source.config.get("lineage"), optimizer_state=load_optimizer_state(source))


def run_scratch(task: Task, width: int, base_width: int, config: TrainConfig, data_position: int,
                checkpoint: Path | None, report: Report | None = None, progress=None) -> RunOutcome:
    """Train a fresh μP model at ``width`` on the same tokens as the warmstarted run."""
    model = build_model(task, width, base_width, config.seed)
    return run_training(task, model, config, width=width, base_width=base_width, checkpoint=checkpoint,
                        state=TrainState(data_position=data_position), report=report, progress=progress,
                        description=f"scratch w{width}")
