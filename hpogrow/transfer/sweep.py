"""Running the sweep: one run from scratch per parameterization × width × learning rate × seed."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from hpogrow.data.supply import task_token_supply
from hpogrow.errors import TrainingDiverged
from hpogrow.options import flag
from hpogrow.parametrize import build_model, build_standard_model, count_parameters
from hpogrow.progress import QUIET, Display, run_bar
from hpogrow.runs import run_training
from hpogrow.storage import default_storage_url, load_or_create_study, open_storage
from hpogrow.tasks.base import Batch, Task
from hpogrow.train import Evaluation, TrainConfig, torch_threads
from hpogrow.transfer.config import PARAMETERIZATIONS, TransferConfig
from hpogrow.transfer.record import record_run, record_verdict, recorded_runs, signature
from hpogrow.transfer.verdict import TransferResult, TransferRun, judge, run_key
from hpogrow.transfer.view import describe_sweep, print_transfer


class _MemoizedTask(Task):
    """``task`` with every batch it hands out kept in memory.

    All runs of a sweep read the same examples (equal tokens), so each batch is drawn once; for
    the Fourier target the drawing costs more than a small model's training step.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        self.name, self.width_step, self.tokens_per_example = task.name, task.width_step, task.tokens_per_example
        self._batches: dict[tuple[int, int, str], Batch] = {}
        self._eval_batches: dict[str, list[Batch]] = {}

    def build_model(self, width: int) -> nn.Module:
        return self.task.build_model(width)

    def initialize(self, model: nn.Module) -> None:
        self.task.initialize(model)

    def batch(self, position: int, batch_size: int, device: torch.device) -> Batch:
        key = (position, batch_size, str(device))
        if key not in self._batches:
            self._batches[key] = self.task.batch(position, batch_size, device)
        return self._batches[key]

    def eval_batches(self, device: torch.device) -> list[Batch]:
        if str(device) not in self._eval_batches:
            self._eval_batches[str(device)] = self.task.eval_batches(device)
        return self._eval_batches[str(device)]

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.task.loss(model, batch)

    def eval_losses(self, model: nn.Module, batches: list[Batch]) -> torch.Tensor:
        return self.task.eval_losses(model, batches)


def _train_run(task: Task, config: TransferConfig, parameterization: str, width: int, learning_rate: float,
               seed: int, display: Display) -> TransferRun:
    """Train one run from scratch; a diverged run comes back with ``final_loss = inf``."""
    base_width = config.widths[0]
    model = (build_model(task, width, base_width, seed) if parameterization == "μP"
             else build_standard_model(task, width, seed))
    n_params = count_parameters(model).total
    train_config = TrainConfig(learning_rate=learning_rate, batch_size=config.batch_size, tokens=config.tokens,
                               schedule=config.schedule, evaluations=config.evaluations, seed=seed,
                               device=config.device, precision=config.precision, compile=config.compile)
    curve: list[Evaluation] = []
    description = f"{parameterization} w{width} 2^{math.log2(learning_rate):.1f} s{seed}"
    try:
        with run_bar(display, description, config.tokens) as on_tokens:
            run_training(task, model, train_config, width=width,
                         base_width=base_width if parameterization == "μP" else width, checkpoint=None,
                         report=curve.append, on_tokens=on_tokens)
        final_loss, reason = curve[-1].val_loss, None
    except TrainingDiverged as error:
        final_loss, reason = math.inf, str(error)
    points = tuple((evaluation.tokens_seen, evaluation.val_loss) for evaluation in curve)
    return TransferRun(parameterization, width, learning_rate, seed, final_loss, points, n_params, reason)


def run_transfercheck(task: Task, config: TransferConfig = TransferConfig(),
                      console: Console | None = None, display: Display = QUIET) -> TransferResult:
    """Sweep learning rates at several widths in μP and SP, judge, record, plot, print.

    Example (CPU, under a minute)::

        import hpogrow

        task = hpogrow.FourierTask(modes=256, eval_examples=512)
        config = hpogrow.TransferConfig(widths=(16, 64), learning_rates=(2**-9, 2**-7, 2**-5, 2**-3),
                                        tokens=64 * 100, seeds=1, workdir="/tmp/transfer-example")
        result = hpogrow.run_transfercheck(task, config)
        print(result.verdicts["μP"].transfers, result.plot)

    Raises:
        UsageError: bad widths or learning rates (before anything is written).
    """
    start = time.perf_counter()
    console = console or Console()
    config = config.for_task(task)
    task_token_supply(task, config.tokens, [], 0, batch_sizes=[config.batch_size], allow_repeat=config.allow_repeat,
                      budget_flag=(flag("tokens"), config.tokens))  # every run reads the same examples
    seeds = tuple(range(config.seed, config.seed + config.seeds))
    workdir = Path(config.workdir)
    storage_url = config.storage or default_storage_url(workdir)
    study_name = config.study or f"{task.name}-transfer"
    study = load_or_create_study(open_storage(storage_url), study_name, signature(task, config))
    recorded = recorded_runs(study, config.widths[0])
    wanted = [(parameterization, width, rate, seed) for parameterization in PARAMETERIZATIONS
              for width in config.widths for rate in config.learning_rates for seed in seeds]
    to_train = [combination for combination in wanted if run_key(*combination) not in recorded]
    console.print(describe_sweep(task.name, config, seeds, study_name, reused=len(wanted) - len(to_train),
                                 to_train=len(to_train)))
    memoized = _MemoizedTask(task)
    overall = display.bar("runs", len(to_train))
    with torch_threads(config.threads):
        for combination in to_train:
            run = _train_run(memoized, config, *combination, display)
            record_run(study, run, config)
            recorded[run_key(*combination)] = run
            overall.advance(1, run.final_loss)
    overall.close()
    runs = [recorded[run_key(*combination)] for combination in wanted]
    verdicts = {parameterization: judge(runs, parameterization, config.widths, config.learning_rates, seeds,
                                        config.max_drift) for parameterization in PARAMETERIZATIONS}
    result = TransferResult(config=config, study_name=study_name, storage=storage_url, runs=runs, verdicts=verdicts,
                            plot=workdir / "plots" / f"{study_name.replace('/', '_')}.png", trained=len(to_train),
                            seconds=0.0, seeds=seeds)
    record_verdict(study, result)
    result.seconds = time.perf_counter() - start
    print_transfer(result, console)
    return result
