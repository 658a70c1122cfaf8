"""Training runs as the pipeline needs them: a base trial at the base width, a warmstarted run
from a grown checkpoint, and a from-scratch run. Each returns a :class:`RunOutcome`.

:class:`BaseTrial` is the one runner of base trials for every executor: in process it reports
to Optuna's pruner, in a Ray worker to ``tune.report`` (thin adapters in
:mod:`hpogrow.search.executors`). It knows nothing about Optuna or Ray: each evaluation goes to a
callback as a :class:`TrialEvent`, with a checkpoint folder when one was written (at rungs, and
at the full budget), and a run can resume from such a folder.

These are plain, picklable callables so that any executor can run them.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from hpogrow import distributed
from hpogrow import resume as resume_points
from hpogrow._crash import crash_point
from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.parametrize import build_model, count_parameters, resolve_device
from hpogrow.progress import TokensCallback
from hpogrow.resume import ResumePoint
from hpogrow.tasks import Task
from hpogrow.throughput import training_flops, training_flops_per_token
from hpogrow.train import Evaluation, Report, TrainConfig, TrainState, final_loss, make_optimizer, total_steps, train


@dataclass(frozen=True)
class RunSummary:
    """What the record keeps of a run however it ended (complete, stopped at a rung, or still
    going). Its fields travel as Ray metrics and become the trial's user attributes."""

    n_params: int
    compute_params: int
    """Parameters that do matmul work (no embedding tables): the N of 6·N·D."""
    tokens: int
    """Tokens seen so far: the fidelity the run reached."""
    data_position: int
    """Examples of the training stream consumed, by this run and its ancestors."""
    initial_loss: float | None
    final_loss: float | None
    """The latest held-out loss."""
    tokens_per_second: float | None = None
    checkpoint: str | None = None
    """The checkpoint folder written at the full budget (``None`` before or without one)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth recording (``mfu``, ``device``, ``node``, …)."""

    @property
    def flops(self) -> float:
        return training_flops(self.compute_params, self.tokens)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        return final_loss(self.evaluations)

    @property
    def flops(self) -> float:
        """6·N·D with N the compute parameters (no embedding tables) and D this run's tokens."""
        return training_flops(self.compute_params, self.state.tokens_seen)

    @property
    def summary(self) -> RunSummary:
        return RunSummary(self.n_params, self.compute_params, self.state.tokens_seen, self.state.data_position,
                          self.evaluations[0].val_loss, self.final_loss, round(self.tokens_per_second, 1),
                          None if self.checkpoint is None else str(self.checkpoint), dict(self.extra))


@dataclass(frozen=True)
class CheckpointOwner:
    """Whose checkpoint a folder is: the storage (by key), the study and the trial naming it."""

    storage_key: str
    study: str
    trial: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_facts(task: Task, data_position: int, device=None, mfu: float | None = None) -> dict[str, Any]:
    """What else a run's record keeps: its device, its MFU (on CUDA) and, for a task with a
    finite training set, ``data_passes`` (passes over it by ``data_position``; above 1 a token
    was read twice)."""
    passes = task.data_passes(data_position)
    facts = {"device": None if device is None else str(device), "mfu": mfu,
             "data_passes": None if passes is None else round(passes, 4)}
    return {key: value for key, value in facts.items() if value is not None}


def run_training(task: Task, model, config: TrainConfig, *, width: int, base_width: int,
                 checkpoint: Path | None, state: TrainState = TrainState(), report: Report | None = None,
                 on_tokens: TokensCallback | None = None, lineage: dict | None = None,
                 optimizer_state: dict | None = None, owner: CheckpointOwner | None = None,
                 resume: ResumePoint | None = None, source: str = "") -> RunOutcome:
    """Train ``model`` and, when it ran its full budget, write its checkpoint.

    ``optimizer_state`` (e.g. Adam moments carried through growth) seeds the optimizer. With
    ``resume``, a partial checkpoint is written every ``resume.every`` evaluations and at the
    last, and a partial checkpoint of this run (same owner, same :func:`hpogrow.resume.fingerprint`
    of configuration, start and ``source``) found there is continued from: its evaluations are
    reported again first (the record keeps each once), so no point of the curve is lost. A partial
    checkpoint is written before its evaluation is reported: a fault in between loses nothing either.
    """
    parallel = distributed.current()
    device = distributed.local_device(resolve_device(config.device), parallel)
    model.to(device)  # before the optimizer is made: the fused one lives where the parameters do
    optimizer = make_optimizer(model, config)
    owner_dict = None if owner is None else owner.as_dict()
    expected = resume_points.fingerprint(config, state, source, width)
    resumed, refused = resume_points.load(resume, owner_dict, expected) if resume is not None else (None, None)
    # every rank must continue from the same step, or the ranks fall out of lockstep
    distributed.agree(resumed.state.step if resumed is not None else 0, "resumed at step", device, parallel)

    def save_partial(at: TrainState, evaluations: list[Evaluation]) -> None:
        if parallel.chief:  # one writer per run: under DDP every rank holds the same model
            resume_points.save(resume, model, optimizer, task=task, width=width, base_width=base_width,
                               config=config, state=at, evaluations=evaluations, resumed_at=resumed_at,
                               owner=owner_dict, expected=expected)

    if resumed is not None:
        model.load_state_dict(resumed.weights)
        optimizer.load_state_dict(resumed.optimizer_state)
        state, earlier, resumed_at = resumed.state, resumed.evaluations, resumed.resumed_at
        save_partial(state, earlier)  # this resume is recorded at once: a second fault before the next keeps it
    else:
        earlier, resumed_at = [], []
        if optimizer_state is not None:
            rates = [(group["lr"], group["initial_lr"]) for group in optimizer.param_groups]
            optimizer.load_state_dict(optimizer_state)
            for group, (rate, initial) in zip(optimizer.param_groups, rates):  # the moments carry over, not the rates
                group["lr"], group["initial_lr"] = rate, initial
    if report is not None:
        for evaluation in earlier:
            report(evaluation)
    start, steps = state, total_steps(task, config)
    trained: list[Evaluation] = []  # this call's evaluations so far

    def on_evaluation(evaluation: Evaluation) -> bool:
        trained.append(evaluation)
        number = len(earlier) + len(trained)  # the evaluation before the first step is number 1
        if resume is not None and evaluation.step > start.step and ((number - 1) % resume.every == 0
                                                                    or evaluation.step >= steps):
            save_partial(TrainState(evaluation.step, evaluation.tokens_seen,
                                    start.data_position + (evaluation.step - start.step) * config.batch_size),
                         [*earlier, *trained])
        stop = bool(report(evaluation)) if report is not None else False
        crash_point("target-evaluation")
        return stop

    result = train(model, task, config, state=state, optimizer=optimizer, report=on_evaluation, on_tokens=on_tokens)
    evaluations = [*earlier, *result.evaluations]
    counts = count_parameters(model)
    extra = run_facts(task, result.state.data_position, mfu=result.mfu)
    extra["flops_with_attention"] = training_flops_per_token(model) * result.state.tokens_seen
    if resume is not None:
        extra["resumed_at_tokens"] = tuple(resumed_at)
        if refused:
            extra["resume_refused"] = refused
    if evaluations[-1].val_loss_se is not None:
        extra["val_loss_se"] = evaluations[-1].val_loss_se
    outcome = RunOutcome(evaluations, result.state, result.stopped_early, counts.total, counts.compute,
                         result.tokens_per_second, extra=extra)
    if checkpoint is not None and not result.stopped_early and parallel.chief:  # one writer per run
        outcome.checkpoint = save_checkpoint(
            checkpoint, model, task=task, width=width, base_width=base_width, seed=config.seed,
            state=result.state, train_config=config, optimizer=result.optimizer, lineage=lineage,
            owner=owner_dict,
            metrics={"val_loss": outcome.final_loss, "initial_loss": outcome.evaluations[0].val_loss,
                     "n_params": counts.total, "compute_params": counts.compute, "flops": outcome.flops})
    return outcome


@dataclass(frozen=True)
class TrialEvent:
    """One evaluation of a base trial, as its executor's adapter receives it."""

    evaluation: Evaluation
    summary: RunSummary
    complete: bool
    """The trial has run its whole token budget (its final checkpoint is written)."""
    checkpoint: Path | None = None
    """A checkpoint folder of this moment (a rung, or the full budget); a rung's folder is
    deleted once the callback returns, so the callback must copy what it keeps."""
    resumed_from: int = 0
    """Tokens the trial had seen when this process resumed it (0 for a fresh start)."""


TrialReport = Callable[[TrialEvent], "bool | None"]


@dataclass(frozen=True)
class BaseTrial:
    """The one runner of base trials (width = μP base width), for every executor.

    Example (CPU, seconds)::

        from hpogrow import FourierTask, TrainConfig
        from hpogrow.runs import BaseTrial
        trial = BaseTrial(FourierTask(modes=64), 16, TrainConfig(1.0, 32, tokens=32 * 8, evaluations=2),
                          Path("/tmp/hp-base"))
        outcome = trial.run({"learning_rate": 1e-2, "batch_size": 32}, number=0)
    """

    task: Task
    base_width: int
    template: TrainConfig
    """Budget, evaluation points and everything but ``learning_rate`` and ``batch_size``."""
    checkpoint_dir: Path
    """Full-budget checkpoints go to ``{checkpoint_dir}/trial-{number}``."""
    storage_key: str = ""
    """Identifies the storage whose study owns the checkpoints (see :class:`CheckpointOwner`)."""
    study: str = ""
    rungs: tuple[int, ...] = ()
    """The plan's rungs in tokens (the last is the budget), where executors compare trials; every
    one is an evaluation point of ``template``. Empty: the executor derives them from the budget."""

    def config(self, params: dict[str, Any]) -> TrainConfig:
        return replace(self.template, learning_rate=params["learning_rate"], batch_size=params["batch_size"])

    def checkpoint_path(self, number: int) -> Path:
        return Path(self.checkpoint_dir) / f"trial-{number}"

    def run(self, params: dict[str, Any], number: int, report: TrialReport | None = None, *,
            resume: Path | None = None, rung_tokens: Sequence[int] = (),
            on_tokens: TokensCallback | None = None) -> RunOutcome:
        """Train trial ``number`` with ``params`` (fresh, or from the checkpoint folder ``resume``).

        Every evaluation goes to ``report`` (returning ``True`` stops the run). At each token
        count in ``rung_tokens`` a checkpoint folder comes with the event (for executors that
        pause and promote trials); at the full budget the trial's checkpoint is written first and
        comes with the event.

        Raises:
            TrainingDiverged: the loss became non-finite.
        """
        config = self.config(params)
        task = self.task
        owner = CheckpointOwner(self.storage_key, self.study, number)
        device = resolve_device(config.device)
        saved: dict[str, Any] = {}
        if resume is None:
            model = build_model(task, self.base_width, self.base_width, config.seed, device)
            state, optimizer_state = TrainState(), None
        else:
            source = read_checkpoint(resume)
            model, _ = load_model(source, task, device)
            state, optimizer_state, saved = source.state, load_optimizer_state(source), source.metrics
        optimizer = make_optimizer(model, config)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        counts = count_parameters(model)
        steps, rungs = total_steps(task, config), set(rung_tokens)
        initial_loss = saved.get("initial_loss")

        def summary(evaluation: Evaluation, position: int, checkpoint: Path | None) -> RunSummary:
            return RunSummary(counts.total, counts.compute, evaluation.tokens_seen, position, initial_loss,
                              evaluation.val_loss, None, None if checkpoint is None else str(checkpoint),
                              run_facts(task, position, device))

        def save(path: Path, evaluation: Evaluation, position: int) -> Path:
            at = TrainState(step=evaluation.step, tokens_seen=evaluation.tokens_seen, data_position=position)
            return save_checkpoint(path, model, task=task, width=self.base_width, base_width=self.base_width,
                                   seed=config.seed, state=at, train_config=config, optimizer=optimizer,
                                   owner=owner.as_dict(), metrics={
                                       "val_loss": evaluation.val_loss, "initial_loss": initial_loss,
                                       "n_params": counts.total, "compute_params": counts.compute,
                                       "flops": training_flops(counts.compute, evaluation.tokens_seen)})

        def on_evaluation(evaluation: Evaluation) -> bool:
            nonlocal initial_loss
            if initial_loss is None:
                initial_loss = evaluation.val_loss
            position = state.data_position + (evaluation.step - state.step) * config.batch_size
            complete = evaluation.step >= steps
            if complete:
                folder = save(self.checkpoint_path(number), evaluation, position)
                return _emit(report, TrialEvent(evaluation, summary(evaluation, position, folder), True, folder,
                                                state.tokens_seen))
            if evaluation.tokens_seen in rungs and evaluation.step > state.step:
                with tempfile.TemporaryDirectory(prefix="hpogrow-rung-") as staging:
                    folder = save(Path(staging) / "run", evaluation, position)
                    return _emit(report, TrialEvent(evaluation, summary(evaluation, position, None), False, folder,
                                                    state.tokens_seen))
            return _emit(report, TrialEvent(evaluation, summary(evaluation, position, None), False, None,
                                            state.tokens_seen))

        def on_evaluation_then_crash_point(evaluation: Evaluation) -> bool:
            stop = on_evaluation(evaluation)
            crash_point("base-evaluation")
            return stop

        if state.step >= steps:  # promoted after it had already run its whole budget
            last = Evaluation(state.step, state.tokens_seen, saved["val_loss"], None)
            folder = self.checkpoint_path(number)
            _emit(report, TrialEvent(last, summary(last, state.data_position, folder), True, folder, state.tokens_seen))
            return RunOutcome([last], state, False, counts.total, counts.compute, 0.0, folder)
        result = train(model, task, config, state=state, optimizer=optimizer, report=on_evaluation_then_crash_point,
                       on_tokens=on_tokens)
        extra = run_facts(task, result.state.data_position, device, result.mfu)
        return RunOutcome(result.evaluations, result.state, result.stopped_early, counts.total, counts.compute,
                          result.tokens_per_second, None if result.stopped_early else self.checkpoint_path(number),
                          extra)


def _emit(report: TrialReport | None, event: TrialEvent) -> bool:
    return bool(report(event)) if report is not None else False


def run_warmstart(task: Task, grown: Path, config: TrainConfig, checkpoint: Path | None,
                  report: Report | None = None, on_tokens: TokensCallback | None = None,
                  owner: CheckpointOwner | None = None, data_position: int | None = None,
                  resume: ResumePoint | None = None) -> RunOutcome:
    """Train a grown checkpoint from ``data_position`` in the token stream (default: where the
    base stopped), with a fresh optimizer unless the grown folder carries optimizer state
    (``resume``: see :func:`run_training`)."""
    source = read_checkpoint(grown)
    model, task = load_model(source, task)
    position = source.state.data_position if data_position is None else data_position
    return run_training(task, model, config, width=source.width, base_width=source.base_width,
                        checkpoint=checkpoint, state=TrainState(data_position=position),
                        report=report, on_tokens=on_tokens,
                        lineage=source.config.get("lineage"), optimizer_state=load_optimizer_state(source),
                        owner=owner, resume=resume, source=f"grown {Path(grown).resolve()}")


def run_scratch(task: Task, width: int, base_width: int, config: TrainConfig, data_position: int,
                checkpoint: Path | None, report: Report | None = None, on_tokens: TokensCallback | None = None,
                owner: CheckpointOwner | None = None, resume: ResumePoint | None = None) -> RunOutcome:
    """Train a fresh μP model at ``width`` on the same tokens as the warmstarted run (``resume``:
    see :func:`run_training`)."""
    model = build_model(task, width, base_width, config.seed)
    return run_training(task, model, config, width=width, base_width=base_width, checkpoint=checkpoint,
                        state=TrainState(data_position=data_position), report=report, on_tokens=on_tokens,
                        owner=owner, resume=resume, source=f"scratch, base width {base_width}")


@torch.no_grad()
def paired_eval_gap(task: Task, first: str | Path, second: str | Path, device: str = "auto") -> tuple[float, float | None]:
    """The gap in held-out loss between two checkpoints of ``task`` (``first − second``) and the
    eval set's standard error of it: both models score the same units
    (:meth:`Task.eval_losses`), so how hard each unit is cancels and what remains is how far the
    gap would move on another eval set of the same size. ``None`` with a single unit."""
    target = resolve_device(device)
    losses = []
    for folder in (first, second):
        model, model_task = load_model(read_checkpoint(folder), task)
        model.to(target).eval()
        losses.append(model_task.eval_losses(model, model_task.eval_batches(target)).double().cpu())  # (N,)
    difference = losses[0] - losses[1]  # (N,)
    error = float(difference.std() / len(difference) ** 0.5) if len(difference) > 1 else None
    return float(difference.mean()), error
