"""The ladder of cheap runs behind the advice, and its Optuna record.

Two kinds of run, all at one learning rate and batch size (μTransfer) on one schedule (constant
by default):

- ``advice-scratch``: a μP model from scratch at a width and token budget, starting at a data
  position (0 for the scratch ladder; the base's end for the scratch side of a pair). The scratch
  ladder's runs are evaluated at budgets spaced geometrically over ``budget_span`` (their shorter
  budgets, :func:`ladder_budgets`). A pair's base is such a run too, at the base width, and keeps
  its checkpoint; each seed of a budget trains its own base.
- ``advice-warmstart``: the base grown by g (:func:`hpogrow.growth.grow_checkpoint`) and trained
  on the same fresh tokens and budget as the pair's scratch run.

Runs train side by side in ``workers`` processes (a warmstart once its base is done). Each
finished run is one trial of the study ``{task}-advice`` (:func:`hpogrow.record.add_finished`,
one write, by this process); a rerun with the same settings reuses every run it finds there.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from rich.console import Console

from hpogrow import record
from hpogrow.record.checks import LadderRecord
from hpogrow.advise.config import AdviseConfig
from hpogrow.data.supply import examples_read, task_token_supply
from hpogrow.errors import TrainingDiverged
from hpogrow.growth import grow_checkpoint
from hpogrow.growth.plan import plan_growth
from hpogrow.parametrize import build_model, count_parameters_at
from hpogrow.progress import Display, TokensCallback, run_bar
from hpogrow.runs import RunOutcome, run_scratch, run_training, run_warmstart
from hpogrow.tasks.base import Task
from hpogrow.throughput import training_flops
from hpogrow.train import TrainConfig, torch_threads, total_steps

SCRATCH, WARMSTART = "advice-scratch", "advice-warmstart"


@dataclass(frozen=True)
class LadderRun:
    """One run of the ladder as the record keeps it."""

    role: str
    width: int
    tokens: int
    """The asked budget (the run's own tokens)."""
    seed: int
    data_position: int
    """Example of the training stream the run starts at."""
    growth_factor: float | None = None
    """The g asked for (warmstarted runs only)."""
    n_params: int = 0
    compute_params: int = 0
    curve: tuple[tuple[int, float], ...] = ()
    """``(own tokens, held-out loss)`` at each evaluation."""
    param_ratio: float | None = None
    """The g reached: target parameters over the base's (warmstarted runs)."""
    base_tokens: int = 0
    base_flops: float = 0.0
    diverged: bool = False

    @property
    def key(self) -> tuple:
        return run_key(self.role, self.width, self.tokens, self.seed, self.data_position, self.growth_factor)

    @property
    def final_loss(self) -> float:
        return math.inf if self.diverged or not self.curve else self.curve[-1][1]


def run_key(role: str, width: int, tokens: int, seed: int, data_position: int, growth_factor: float | None) -> tuple:
    return role, width, tokens, seed, data_position, None if growth_factor is None else float(f"{growth_factor:.6g}")


@dataclass(frozen=True)
class _Pair:
    """One warmstart/scratch pair to have: its base, its target and the budgets."""

    growth_factor: float
    tokens_per_param: float
    seed: int
    base: LadderRun
    scratch: LadderRun
    warmstart: LadderRun


def signature(task: Task, config: AdviseConfig) -> dict:
    """What makes two ladders' runs comparable; a study made with another signature is not reused."""
    return {"kind": "advise", "task": task.describe(), "learning_rate": config.learning_rate,
            "batch_size": config.batch_size, "base_width": config.base_width, "operator": config.operator,
            "shrink": config.shrink, "precision": config.precision, "evaluations": config.evaluations,
            "budget_span": config.budget_span,
            **({"schedule": config.schedule} if config.schedule != "constant" else {})}  # constant: as before wsd


def ladder_budgets(task: Task, config: AdviseConfig) -> tuple[int, ...]:
    """The budgets a scratch ladder run is evaluated at: two per octave from
    ``tokens/budget_span`` to ``tokens``, each a whole number of steps."""
    step = config.batch_size * task.tokens_per_example
    octaves = math.log2(config.budget_span)
    points = np.geomspace(config.tokens / config.budget_span, config.tokens, 1 + math.ceil(2 * octaves))
    return tuple(sorted({step * max(1, round(point / step)) for point in points} | {config.tokens}))


def _budget(task: Task, config: AdviseConfig, tokens: float) -> int:
    """``tokens`` rounded to whole steps, at least ``evaluations`` of them."""
    step = config.batch_size * task.tokens_per_example
    return step * max(config.evaluations, round(tokens / step))


def plan_ladder(task: Task, config: AdviseConfig) -> tuple[list[LadderRun], list[_Pair]]:
    """The scratch ladder and the pairs, as keys to find or train (nothing runs here)."""
    seeds = range(config.seed, config.seed + config.seeds)
    ladder = [LadderRun(SCRATCH, width, config.tokens, seed, 0) for width in config.widths for seed in seeds]
    base_params = count_parameters_at(task, config.base_width).total
    pairs = []
    for tokens_per_param in config.pair_tokens_per_param:
        for seed in seeds:
            base_tokens = _budget(task, config, tokens_per_param * base_params)
            base = LadderRun(SCRATCH, config.base_width, base_tokens, seed, 0)
            position = total_steps(task, _train_config(config, base_tokens, seed)) * config.batch_size
            for factor in config.growth_factors:
                growth = plan_growth(task, config.base_width, factor)
                tokens = _budget(task, config, tokens_per_param * growth.target_params)
                pairs.append(_Pair(factor, tokens_per_param, seed, base,
                                   LadderRun(SCRATCH, growth.target_width, tokens, seed, position),
                                   LadderRun(WARMSTART, growth.target_width, tokens, seed, position, factor)))
    return ladder, pairs


def _train_config(config: AdviseConfig, tokens: int, seed: int, eval_tokens: tuple[int, ...] = ()) -> TrainConfig:
    return TrainConfig(learning_rate=config.learning_rate, batch_size=config.batch_size, tokens=tokens,
                       schedule=config.schedule, evaluations=config.evaluations, eval_tokens=eval_tokens, seed=seed,
                       device=config.device, precision=config.precision, compile=config.compile)


def check_ladder_supply(task: Task, config: AdviseConfig) -> None:
    """Refuse, before anything is written, a ladder that reads a training example twice (unless
    ``config.allow_repeat``): its furthest run against the data's training windows."""
    ladder, pairs = plan_ladder(task, config)
    runs = ladder + [pair.base for pair in pairs] + [pair.scratch for pair in pairs]  # warmstarts read as scratch
    end = max(run.data_position + examples_read(run.tokens, config.batch_size, task.tokens_per_example) for run in runs)
    task_token_supply(task, end * task.tokens_per_example, [], 0, batch_sizes=[config.batch_size],
                      allow_repeat=config.allow_repeat)


def _finished(run: LadderRun, outcome: RunOutcome | None, curve: list, **extra) -> LadderRun:
    points = tuple((evaluation.tokens_seen, evaluation.val_loss) for evaluation in curve)
    if outcome is None:
        return replace(run, curve=points, diverged=True, **extra)
    return replace(run, n_params=outcome.n_params, compute_params=outcome.compute_params, curve=points, **extra)


def _train_scratch(task: Task, config: AdviseConfig, run: LadderRun, checkpoint: Path | None,
                   on_tokens: TokensCallback) -> LadderRun:
    curve: list = []
    is_ladder = run.data_position == 0 and run.tokens == config.tokens
    train_config = _train_config(config, run.tokens, run.seed, ladder_budgets(task, config) if is_ladder else ())
    try:
        if run.data_position == 0:
            model = build_model(task, run.width, config.base_width, run.seed)
            outcome = run_training(task, model, train_config, width=run.width, base_width=config.base_width,
                                   checkpoint=checkpoint, report=curve.append, on_tokens=on_tokens)
        else:
            outcome = run_scratch(task, run.width, config.base_width, train_config, run.data_position, None,
                                  report=curve.append, on_tokens=on_tokens)
    except TrainingDiverged:
        outcome = None
    return _finished(run, outcome, curve)


def _train_warmstart(task: Task, config: AdviseConfig, pair: _Pair, base: LadderRun, base_checkpoint: Path,
                     on_tokens: TokensCallback) -> LadderRun:
    curve: list = []
    with tempfile.TemporaryDirectory(prefix="hpogrow-advise-") as folder:
        grown = grow_checkpoint(base_checkpoint, Path(folder) / "grown", factor=pair.growth_factor,
                                operator=config.operator, shrink=config.shrink, seed=pair.seed, task=task)
        try:
            outcome = run_warmstart(task, grown.path, _train_config(config, pair.warmstart.tokens, pair.seed), None,
                                    report=curve.append, on_tokens=on_tokens)
        except TrainingDiverged:
            outcome = None
    return _finished(pair.warmstart, outcome, curve, param_ratio=grown.plan.param_ratio, base_tokens=base.tokens,
                     base_flops=training_flops(base.compute_params, base.tokens))


def record_run(study: optuna.Study, run: LadderRun, config: AdviseConfig) -> None:
    """``run`` as one finished trial (COMPLETE, or FAIL when it diverged)."""
    attributes = LadderRecord(role=run.role, width=run.width, tokens=run.tokens, seed=run.seed,
                              data_position=run.data_position, growth_factor=run.growth_factor,
                              param_ratio=run.param_ratio, n_params=run.n_params, compute_params=run.compute_params,
                              base_tokens=run.base_tokens, base_flops=run.base_flops, diverged=run.diverged,
                              tokens_per_param=run.tokens / run.n_params if run.n_params else None,
                              learning_rate=config.learning_rate, batch_size=config.batch_size,
                              schedule=config.schedule)
    record.add_finished(
        study, {"width": run.width, "tokens": run.tokens, "role": run.role},
        {"width": IntDistribution(1, 1 << 20, log=True), "tokens": IntDistribution(1, 1 << 40, log=True),
         "role": CategoricalDistribution((SCRATCH, WARMSTART))},
        list(run.curve), attributes, value=None if run.diverged else run.final_loss,
        fail_reason="the loss became non-finite" if run.diverged else None)


def recorded_runs(study: optuna.Study) -> dict[tuple, LadderRun]:
    """Finished ladder runs of ``study`` by key."""
    runs = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)):
        stored = LadderRecord.of(trial)
        if stored is None or stored.role not in (SCRATCH, WARMSTART):
            continue
        run = LadderRun(stored.role, stored.width, stored.tokens, stored.seed, stored.data_position,
                        stored.growth_factor, stored.n_params, stored.compute_params,
                        tuple(sorted(trial.intermediate_values.items())), stored.param_ratio, stored.base_tokens,
                        stored.base_flops, stored.diverged)
        runs.setdefault(run.key, run)
    return runs


@dataclass(frozen=True)
class _Job:
    """One run to train: the run, and for a warmstart its pair, its base and the base's checkpoint;
    for a base, where to keep its checkpoint."""

    run: LadderRun
    pair: _Pair | None = None
    base: LadderRun | None = None
    checkpoint: Path | None = None


def _train(task: Task, config: AdviseConfig, job: _Job, on_tokens: TokensCallback | None = None) -> LadderRun:
    """Train one job (here or in a worker process, with ``config.threads`` threads)."""
    with torch_threads(config.threads):
        if job.run.role == WARMSTART:
            return _train_warmstart(task, config, job.pair, job.base, job.checkpoint, on_tokens)
        return _train_scratch(task, config, job.run, job.checkpoint, on_tokens)


def run_ladder(task: Task, config: AdviseConfig, study: optuna.Study, console: Console, display: Display
               ) -> tuple[list[LadderRun], list[tuple[_Pair, LadderRun, LadderRun]], int]:
    """Train what the study lacks in ``config.workers`` processes, with bars on ``display``;
    returns the ladder runs, the pairs (with their scratch and warmstarted runs) and how many runs
    this call trained."""
    ladder, pairs = plan_ladder(task, config)
    recorded = recorded_runs(study)
    wanted = list({run.key: run for run in ladder + [p.base for p in pairs] + [p.scratch for p in pairs]
                   + [p.warmstart for p in pairs]}.values())
    missing = [run for run in wanted if run.key not in recorded]
    checkpoints = Path(config.workdir) / "checkpoints" / (config.study or f"{task.name}-advice")

    def base_checkpoint(base: LadderRun) -> Path:
        return checkpoints / f"base-w{base.width}-t{base.tokens}-s{base.seed}"

    base_keys = {p.base.key for p in pairs}
    needs_base = {p.base.key for p in pairs if p.warmstart.key not in recorded}
    retrain = [p.base for p in pairs if p.base.key in needs_base and p.base.key in recorded
               and not (base_checkpoint(p.base) / "model.pt").exists()]
    retrain = list({run.key: run for run in retrain}.values())
    console.print(f"advice ladder of {task.name}: {len(ladder)} scratch runs at widths {list(config.widths)} × "
                  f"{config.seeds} seeds ({config.tokens:,} tokens each, read at budgets "
                  f"{config.tokens / config.budget_span:,.0f}–{config.tokens:,}), {len(pairs)} warmstart/scratch pairs "
                  f"(g {list(config.growth_factors)} × {list(config.pair_tokens_per_param)} tokens/param × "
                  f"{config.seeds} seeds, one base each) from base width {config.base_width}; lr "
                  f"{config.learning_rate:.3g}, batch {config.batch_size}; {len(wanted) - len(missing)} runs reused, "
                  f"{len(missing) + len(retrain)} to train in {config.workers} process(es)")
    overall = display.bar("advice runs", len(missing) + len(retrain))

    def job(run: LadderRun) -> _Job:
        if run.role == WARMSTART:
            pair = next(p for p in pairs if p.warmstart.key == run.key)
            return _Job(run, pair, recorded[pair.base.key], base_checkpoint(pair.base))
        return _Job(run, checkpoint=base_checkpoint(run) if run.key in base_keys else None)

    def finished(done: LadderRun, write: bool) -> None:
        if write:
            record_run(study, done, config)
            recorded[done.key] = done
        overall.advance(1, done.final_loss)

    retrained = {run.key for run in retrain}
    waiting = [run for run in missing if run.role == WARMSTART]  # until their base is recorded and kept
    ready = retrain + [run for run in missing if run.role != WARMSTART]
    ready.sort(key=lambda run: run.key not in base_keys)  # bases first: their warmstarts wait on them

    def released() -> list[LadderRun]:
        pending = {run.key for run in ready} | running_keys
        free = [run for run in waiting if next(p for p in pairs if p.warmstart.key == run.key).base.key not in pending]
        waiting[:] = [run for run in waiting if run not in free]
        return free

    running_keys: set[tuple] = set()
    ready.extend(released())
    if config.workers == 1:
        while ready:
            run = ready.pop(0)
            with run_bar(display, f"{run.role} w{run.width}", run.tokens) as on_tokens:
                finished(_train(task, config, job(run), on_tokens), write=run.key not in retrained)
            ready.extend(released())
    else:
        methods = multiprocessing.get_all_start_methods()  # fork: the caller's script needs no __main__ guard
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(config.workers, mp_context=context) as pool:
            futures: dict[Future, LadderRun] = {}
            while ready or futures:
                while ready and len(futures) < config.workers:
                    run = ready.pop(0)
                    futures[pool.submit(_train, task, config, job(run))] = run
                    running_keys.add(run.key)
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    run = futures.pop(future)
                    running_keys.discard(run.key)
                    finished(future.result(), write=run.key not in retrained)
                ready.extend(released())
    overall.close()
    trained = [(p, recorded[p.scratch.key], recorded[p.warmstart.key]) for p in pairs]
    return [recorded[run.key] for run in wanted if run.role == SCRATCH], trained, len(missing) + len(retrain)
