"""The one training loop: mup's AdamW, constant or WSD schedule, fixed held-out evaluation.

It knows nothing about Optuna or Ray. It reports each evaluation to a callback; a callback that
returns ``True`` stops the run (that is how pruners and schedulers plug in). A non-finite loss
raises :class:`hpogrow.errors.TrainingDiverged`.

In a process group of several processes (:mod:`hpogrow.distributed`) the same loop is
data-parallel: each rank steps a DDP-wrapped model on its share of the global batch, and every
rank evaluates the whole held-out set, so all ranks see the same curve and stop together.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import mup
import torch
from torch import nn

from hpogrow import distributed
from hpogrow.errors import TrainingDiverged
from hpogrow.parametrize import resolve_device
from hpogrow.progress import TokensCallback
from hpogrow.tasks.base import Task, validation_loss
from hpogrow.throughput import model_flops_utilization, training_flops_per_token


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and budget of one training run."""

    learning_rate: float
    """Global Adam learning rate at the base width; MuAdamW divides it per layer by the width
    multiplier of matrix-like parameters."""
    batch_size: int
    """Examples per step (sequences for the LM task)."""
    tokens: int
    """Token budget of the run (examples × tokens per example)."""
    schedule: Literal["constant", "wsd"] = "constant"
    """Learning-rate schedule: constant, or warmup-stable-decay (no warmup, linear decay to 0)."""
    decay_fraction: float = 0.2
    """Fraction of steps spent decaying, for ``wsd``."""
    beta1: float = 0.9
    """Adam β1."""
    beta2: float = 0.95
    """Adam β2."""
    weight_decay: float = 0.0
    """Decoupled weight decay (0 as in the papers)."""
    evaluations: int = 16
    """Held-out evaluations spread evenly over the run, plus one before the first step (used when
    ``eval_tokens`` is empty)."""
    eval_tokens: tuple[int, ...] = ()
    """Token counts at which to evaluate (besides before the first step and at the end), each a
    whole number of steps. A search sets them so that every batch size is judged at the same token
    counts; empty: ``evaluations`` points evenly spaced in steps."""
    seed: int = 0
    """Seed of the model initialisation."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """``bf16`` runs forward and backward under autocast."""
    compile: bool = False
    """Run the model through ``torch.compile`` (worth it on a GPU for long runs; the first steps
    pay for compilation). Data-parallel runs compile the DDP-wrapped module for training and
    evaluate without compilation."""

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if self.tokens < 1:
            raise ValueError(f"token budget must be positive, got {self.tokens}")
        if self.schedule not in ("constant", "wsd"):
            raise ValueError(f"schedule must be 'constant' or 'wsd', got {self.schedule!r}")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(f"decay fraction must be in (0, 1], got {self.decay_fraction}")
        if self.evaluations < 1:
            raise ValueError("evaluations must be at least 1")
        object.__setattr__(self, "eval_tokens", tuple(sorted({int(t) for t in self.eval_tokens})))
        if any(not 0 < t <= self.tokens for t in self.eval_tokens):
            raise ValueError(f"evaluation points must lie in (0, {self.tokens}], got {list(self.eval_tokens)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")


@dataclass(frozen=True)
class TrainState:
    """Where a run stands: its own step and token counters and its place in the data stream."""

    step: int = 0
    tokens_seen: int = 0
    data_position: int = 0
    """Examples of the task's training stream consumed so far (by this run and its ancestors)."""


@dataclass(frozen=True)
class Evaluation:
    """One held-out evaluation, as passed to the report callback."""

    step: int
    tokens_seen: int
    val_loss: float
    train_loss: float | None
    """Mean training loss since the previous evaluation (``None`` before the first step)."""
    val_loss_se: float | None = None
    """Standard error of ``val_loss`` over the eval set's units (:func:`hpogrow.tasks.base.validation_loss`)."""


def final_loss(evaluations: list[Evaluation]) -> float:
    """A run's final loss: its latest held-out evaluation (the value its trial is told)."""
    return evaluations[-1].val_loss


@dataclass
class TrainResult:
    state: TrainState
    evaluations: list[Evaluation] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    eval_seconds: float = 0.0
    """Part of ``seconds`` spent on held-out evaluations."""
    optimizer: torch.optim.Optimizer | None = None
    mfu: float | None = None
    """Model FLOPs utilisation of the run on a CUDA device with a known peak (see
    :mod:`hpogrow.throughput`), per device of a data-parallel run; ``None`` on CPU."""
    start_tokens: int = 0
    """Tokens seen when this call started (above 0: a run continued from a checkpoint)."""

    @property
    def final_loss(self) -> float:
        return final_loss(self.evaluations)

    @property
    def tokens_per_second(self) -> float:
        """Tokens this call trained over its wall time, evaluations included (0: none trained)."""
        trained = self.state.tokens_seen - self.start_tokens
        return trained / self.seconds if trained > 0 else 0.0


Report = Callable[[Evaluation], "bool | None"]


def learning_rate_factor(config: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of every group's initial LR at ``step`` (keeps mup's per-group ratios)."""
    if config.schedule == "constant":
        return 1.0
    decay_steps = max(1, round(config.decay_fraction * total_steps))
    return min(1.0, (total_steps - step) / decay_steps)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """mup's AdamW: matrix-like parameters get ``lr / width_mult`` in their own groups.

    The fused implementation (one kernel for all parameters) on CUDA and CPU: 3× faster steps
    than the per-parameter loop on CPU."""
    fused = {"fused": True} if next(model.parameters()).device.type in ("cuda", "cpu") else {}
    optimizer = mup.MuAdamW(model.parameters(), lr=config.learning_rate, betas=(config.beta1, config.beta2),
                            weight_decay=config.weight_decay, **fused)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return optimizer


def total_steps(task: Task, config: TrainConfig) -> int:
    return math.ceil(config.tokens / (config.batch_size * task.tokens_per_example))


def evaluation_steps(task: Task, config: TrainConfig) -> set[int]:
    """Steps after which the held-out set is evaluated (step 0, before training, is always one).

    With ``config.eval_tokens`` each point must be a whole number of steps of this batch size:
    that is how runs of different batch sizes are compared at exactly the same token counts.
    """
    steps = total_steps(task, config)
    if not config.eval_tokens:
        return {round(k * steps / config.evaluations) for k in range(config.evaluations + 1)} | {steps}
    tokens_per_step = config.batch_size * task.tokens_per_example
    uneven = [t for t in config.eval_tokens if t % tokens_per_step]
    if uneven:
        raise ValueError(f"evaluation points {uneven} are not whole steps of {tokens_per_step} tokens (batch size "
                         f"{config.batch_size}); choose multiples of the largest batch's step")
    return {0, steps} | {t // tokens_per_step for t in config.eval_tokens}


def train(model: nn.Module, task: Task, config: TrainConfig, *, state: TrainState = TrainState(),
          optimizer: torch.optim.Optimizer | None = None, report: Report | None = None,
          on_tokens: TokensCallback | None = None) -> TrainResult:
    """Train ``model`` (base shapes set) on ``task`` until ``config.tokens``.

    Args:
        state: where to start; ``data_position`` continues another run's token stream.
        optimizer: state to continue from; a fresh MuAdamW when ``None``.
        report: called after each evaluation; returning ``True`` stops the run.
        on_tokens: called with the tokens seen (and the held-out loss at an evaluation) every few
            steps, e.g. to move a progress bar.

    Data-parallel (in a process group of several processes, :mod:`hpogrow.distributed`): every
    rank draws the global batch and steps on its rows of it through DDP; the training loss
    reported is the mean over all ranks, and a stop asked by ``report`` on rank 0 stops every
    rank. ``report`` and ``on_tokens`` are called on every rank with the same values.

    Raises:
        TrainingDiverged: the training or validation loss became non-finite.
        UsageError: the batch size does not split evenly over the data-parallel ranks.
    """
    parallel = distributed.current()
    distributed.check_batch_size(config.batch_size, parallel)
    device = distributed.local_device(resolve_device(config.device), parallel)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model.to(device).train()
    optimizer = optimizer or make_optimizer(model, config)  # over model's own parameters: mup's infshapes
    step_model = distributed.data_parallel(model, device, parallel)  # DDP shares model's parameters
    forward_model = torch.compile(step_model) if config.compile else step_model  # shares them too
    # held-out loss on every rank with the model itself (no DDP collectives): the same on all ranks
    eval_model = forward_model if step_model is model else model
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.precision == "bf16"
                else contextlib.nullcontext())
    eval_batches = task.eval_batches(device)
    steps = total_steps(task, config)
    eval_steps = evaluation_steps(task, config)
    log_every = max(1, min(10, steps // 50))
    tokens_per_step = config.batch_size * task.tokens_per_example

    result = TrainResult(state=state, optimizer=optimizer, start_tokens=state.tokens_seen)
    step, tokens_seen, position = state.step, state.tokens_seen, state.data_position
    loss_sum = torch.zeros((), device=device)
    losses_since_eval = 0
    start = time.perf_counter()

    def evaluate() -> bool:
        nonlocal loss_sum, losses_since_eval
        eval_start = time.perf_counter()
        train_loss = (float(distributed.global_mean(loss_sum, parallel)) / losses_since_eval if losses_since_eval
                      else None)
        model.eval()
        with autocast:
            val_loss, val_loss_se = validation_loss(task, eval_model, eval_batches)
        model.train()
        result.eval_seconds += time.perf_counter() - eval_start
        if not math.isfinite(val_loss) or (train_loss is not None and not math.isfinite(train_loss)):
            raise TrainingDiverged(tokens_seen, train_loss if train_loss is not None and not math.isfinite(train_loss) else val_loss)
        evaluation = Evaluation(step=step, tokens_seen=tokens_seen, val_loss=val_loss, train_loss=train_loss,
                                val_loss_se=val_loss_se)
        result.evaluations.append(evaluation)
        loss_sum, losses_since_eval = torch.zeros((), device=device), 0
        if on_tokens is not None:
            on_tokens(tokens_seen, val_loss)
        return distributed.chief_decides(bool(report(evaluation)) if report else False, device, parallel)

    stop = step == 0 and evaluate()
    while not stop and step < steps:
        factor = learning_rate_factor(config, step, steps)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        batch = distributed.shard(task.batch(position, config.batch_size, device), parallel)
        with autocast:
            loss = task.loss(forward_model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step, position, tokens_seen = step + 1, position + config.batch_size, tokens_seen + tokens_per_step
        loss_sum += loss.detach().float()
        losses_since_eval += 1
        if step in eval_steps:
            stop = evaluate()
        elif step % log_every == 0:
            # one host sync every log_every steps (and, data-parallel, one all-reduce)
            running = float(distributed.global_mean(loss_sum, parallel)) / losses_since_eval
            if not math.isfinite(running):
                raise TrainingDiverged(tokens_seen, running)
            if on_tokens is not None:
                on_tokens(tokens_seen, None)

    result.state = replace(state, step=step, tokens_seen=tokens_seen, data_position=position)
    result.stopped_early = step < steps
    result.seconds = time.perf_counter() - start
    if device.type == "cuda" and result.tokens_per_second > 0:  # each device does 1/world of the work
        result.mfu = model_flops_utilization(training_flops_per_token(model), result.tokens_per_second / parallel.world,
                                             device)
    return result


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then restore the previous number. Tiny models
    on a busy machine train faster on one thread than on two spinning against each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
