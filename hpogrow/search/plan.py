"""The plan of a search: widths, growth steps, token budgets and rungs, worked out and checked
before anything is written (:func:`make_plan`), and shown as a table (:func:`print_plan`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from hpogrow.data.supply import TokenSupply, task_token_supply
from hpogrow.errors import UsageError
from hpogrow.options import bad_flag
from hpogrow.growth import GrowthPlan, growth_warnings, parse_operators, plan_growth, uses_shrink
from hpogrow.parametrize import build_model, check_width, resolve_device
from hpogrow.runs import BaseTrial
from hpogrow.search.config import SearchConfig
from hpogrow.search.executors import Executor, make_executor
from hpogrow.search.halving import Halving
from hpogrow.search.schedule import Schedule, round_to
from hpogrow.search.space import SearchSpace, load_space
from hpogrow.tasks import Task
from hpogrow.train import TrainConfig, make_optimizer


@dataclass(frozen=True)
class Plan:
    task: Task
    config: SearchConfig
    space: SearchSpace
    stages: tuple[GrowthPlan, ...]
    """One growth step per stage; a single step unless ``--stages``."""
    study: str
    schedule: Schedule
    """The base trials' budget and rungs: the same token counts for every batch size."""
    template: TrainConfig
    supply: TokenSupply | None = None
    """The training tokens every run reads, against what the data holds."""
    grow_factor: float = 2.0
    """The growth factor used (``config.grow_factor``, or the advice's under ``auto``)."""
    growth_reason: str | None = None
    """Why that factor, under ``--grow-factor auto``."""

    @property
    def base_tokens(self) -> int:
        return self.schedule.budget

    @property
    def growth(self) -> GrowthPlan:
        """Base to final target, over all stages."""
        first, last = self.stages[0], self.stages[-1]
        return GrowthPlan(first.base_width, last.target_width, first.base_params, last.target_params,
                          first.base_depth, last.target_depth)

    @property
    def target_tokens(self) -> int:
        return self.stage_tokens(len(self.stages) - 1)

    def stage_tokens(self, index: int) -> int:
        return round(self.config.tokens_per_param * self.stages[index].target_params)

    def task_at(self, growth: GrowthPlan) -> Task:
        """The task at a stage's target depth."""
        same = growth.target_depth is None or growth.target_depth == getattr(self.task, "depth", None)
        return self.task if same else self.task.with_depth(growth.target_depth)

    @property
    def base_study(self) -> str:
        return f"{self.study}/base"

    @property
    def target_study(self) -> str:
        growth = self.growth
        depth = f"-d{growth.target_depth}" if growth.target_depth != growth.base_depth else ""
        return f"{self.study}/target-w{growth.target_width}{depth}"

    def base_trial(self) -> BaseTrial:
        """The runner of this search's base trials."""
        return BaseTrial(self.task, self.config.base_width, self.template, self.checkpoint_dir / "base",
                         self.config.storage_key, self.base_study, self.schedule.rungs)

    @property
    def checkpoint_dir(self) -> Path:
        """``{workdir}/checkpoints/{storage key}/{study}``: two storages never share a folder.
        Absolute: Ray workers run in folders of their own."""
        return Path(self.config.workdir).resolve() / "checkpoints" / self.config.storage_key / self.study



def make_plan(task: Task, config: SearchConfig, executor: Executor | None = None) -> Plan:
    """Validate everything and work out widths and budgets; writes nothing.

    The base budget is ``tokens_per_param`` × base parameters, rounded so that the executor's
    rungs are whole steps of the largest batch size; every base trial evaluates at the rungs and
    at ``evaluations`` points on the same grid, so all batch sizes are judged at equal tokens.
    """
    executor = executor or make_executor_for(config)
    resolve_device(config.device)
    check_width(task, config.base_width, "--base-width")
    space = load_space(config.space, task.name)
    uneven = [size for size in space.batch_sizes if size % config.workers_per_run]
    if uneven:
        raise bad_flag("workers_per_run", config.workers_per_run,
                       f"batch sizes {uneven} of the search space do not split evenly over that many workers; "
                       "use a divisor of every batch size (a power of two)")
    width_operator, depth_operator = parse_operators(config.grow_op)
    factor, reason = config.grow_factor, None
    if factor == "auto":
        from hpogrow.advise.run import auto_growth_factor

        factor, reason = auto_growth_factor(config.storage_url, task.name, config.tokens_per_param)
    stages, width, current = [], config.base_width, task
    for _ in range(config.stages):
        step = plan_growth(current, width, factor, config.target_width, config.target_depth,
                           grow_width=width_operator is not None, grow_depth=depth_operator is not None)
        stages.append(step)
        width = step.target_width
        current = current if step.target_depth == getattr(current, "depth", None) else current.with_depth(step.target_depth)
    growth = stages[0]
    step_tokens = max(space.batch_sizes) * task.tokens_per_example  # every smaller power of two divides it
    asked = config.tokens_per_param * growth.base_params
    if asked < step_tokens * config.evaluations:
        raise UsageError(f"--tokens-per-param {config.tokens_per_param} gives {asked:,.0f} tokens per base trial, "
                         f"fewer than {config.evaluations} steps of the largest batch; raise it to at least "
                         f"{step_tokens * config.evaluations / growth.base_params:.3g}")
    schedule = executor.schedule(asked, step_tokens)
    grid = {round_to(schedule.budget * k / config.evaluations, step_tokens) for k in range(1, config.evaluations + 1)}
    eval_tokens = tuple(sorted(t for t in grid | set(schedule.rungs) if t <= schedule.budget))
    template = TrainConfig(learning_rate=1.0, batch_size=max(space.batch_sizes), tokens=schedule.budget,
                           schedule=config.schedule, evaluations=config.evaluations, eval_tokens=eval_tokens,
                           seed=config.seed, device=config.device, precision=config.precision, compile=config.compile)
    plan = Plan(task, config, space, tuple(stages), config.study or f"{task.name}-w{config.base_width}",
                schedule, template, grow_factor=factor, growth_reason=reason)
    supply = task_token_supply(task, plan.base_tokens, [plan.stage_tokens(k) for k in range(len(stages) - 1)],
                               plan.target_tokens, batch_sizes=space.batch_sizes, seeds=config.seeds,
                               allow_repeat=config.allow_repeat,
                               budget_flag=("--tokens-per-param", config.tokens_per_param))
    return replace(plan, supply=supply)



def measure_tokens_per_second(task: Task, width: int, base_width: int, config: TrainConfig, steps: int = 2) -> float:
    """Training throughput measured on a few steps (after one warm-up step), for the plan."""
    device = resolve_device(config.device)
    model = build_model(task, width, base_width, config.seed, device)
    optimizer = make_optimizer(model, config)
    elapsed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        task.loss(model, task.batch(step * config.batch_size, config.batch_size, device)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += (time.perf_counter() - start) if step else 0.0
    return steps * config.batch_size * task.tokens_per_example / elapsed



def make_executor_for(config: SearchConfig) -> Executor:
    """The executor ``config.executor`` names, with the config's options (Ray is imported only
    when a search starts)."""
    halving = Halving(config.reduction_factor or Halving().reduction_factor)
    if config.executor != "ray":
        return make_executor(config.executor, scheduler=config.scheduler, halving=halving,
                             threads=max(1, round(config.cpus_per_trial)))
    gpus = config.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if config.device != "cpu" and torch.cuda.is_available() else 0.0
    return make_executor("ray", scheduler=config.scheduler, halving=halving, reduction_factor=config.reduction_factor or 2,
                         cpus_per_trial=config.cpus_per_trial, gpus_per_trial=gpus,
                         max_concurrent=config.max_concurrent, address=config.ray_address,
                         storage_path=config.ray_storage or str(Path(config.workdir) / "ray"), verbose=config.verbose,
                         workers_per_run=config.workers_per_run)



def print_plan(plan: Plan, console: Console, remaining_trials: int, executor: Executor) -> None:
    config, growth = plan.config, plan.growth
    base_speed = measure_tokens_per_second(plan.task, growth.base_width, growth.base_width, plan.template)
    target_speed = measure_tokens_per_second(plan.task_at(growth), growth.target_width, growth.base_width, plan.template)
    stage_tokens = sum(plan.stage_tokens(k) for k in range(len(plan.stages) - 1))
    base_trials = remaining_trials * executor.spend(max(1, remaining_trials), plan.schedule) + config.bases - 1
    seconds = 1.15 * (base_trials * plan.base_tokens / base_speed
                      + config.seeds * (2 * plan.target_tokens + stage_tokens) / target_speed)
    table = Table(title=f"hpogrow plan — task {plan.task.name}, device {resolve_device(config.device)}", show_header=False)
    table.add_row("base study", f"{plan.base_study}: {remaining_trials} of {config.trials} trials to run, "
                  f"lr {plan.space.learning_rate_low:g}…{plan.space.learning_rate_high:g}, batch {list(plan.space.batch_sizes)}")
    table.add_row("base width", f"{growth.base_width} ({growth.base_params:,} parameters), "
                  f"{plan.base_tokens:,} tokens per trial ({plan.base_tokens / growth.base_params:.3g} tokens/parameter; "
                  f"asked {config.tokens_per_param:g}, rounded to whole steps of every batch size)")
    widths = " → ".join([str(growth.base_width)] + [str(s.target_width) for s in plan.stages])
    depths = f", depth {growth.base_depth} → {growth.target_depth}" if growth.target_depth != growth.base_depth else ""
    table.add_row("growth", f"{widths}{depths} with {config.grow_op}: width ×{growth.width_ratio:.2f}, "
                  f"parameters ×{growth.param_ratio:.2f} (asked {plan.grow_factor:g}"
                  f"{' per stage' if len(plan.stages) > 1 else ''}), shrink λ={config.shrink}"
                  + (", Adam moments carried" if config.carry_optimizer else ""))
    if plan.growth_reason:
        table.add_row("growth factor", plan.growth_reason)
    pairs = (f"{config.seeds} warmstart/scratch pairs (seeds {config.seed}–{config.seed + config.seeds - 1}, "
             "fresh tokens each)" if config.seeds > 1 else "warmstart and scratch (one seed: the speedup gets no interval)")
    if config.bases > 1:
        table.add_row("bases", f"{config.bases}: the winner and {config.bases - 1} replicate "
                      f"base{'s' if config.bases > 2 else ''} (its learning rate and batch size retrained at width "
                      f"{growth.base_width}, seed{'s' if config.bases > 2 else ''} "
                      f"{', '.join(str(config.seed + k) for k in range(1, config.bases))}, {plan.base_tokens:,} tokens "
                      f"each); pair k grows base k mod {config.bases}, and the speedup's interval resamples bases")
    elif config.seeds > 1:
        table.add_row("bases", "1: every pair grows the winner, so the speedup's interval does not cover the base "
                      "(--bases 2 or more to cover it)")
    parallel = (f", each on {config.workers_per_run} DDP workers (Ray Train)" if config.workers_per_run > 1 else "")
    rates = ("" if config.warmstart_lr_scale == 1 else
             f", warmstart at {config.warmstart_lr_scale:g}× the winner's learning rate (scratch at 1×)")
    table.add_row("target runs", f"{plan.target_study}: {pairs}, {growth.target_params:,} parameters, "
                  f"{plan.target_tokens:,} tokens each{rates}{parallel}; a partial checkpoint every "
                  f"{config.checkpoint_every} of {config.evaluations} evaluations (a rerun continues from it)")
    table.add_row("throughput", f"{base_speed:,.0f} tokens/s at width {growth.base_width}, "
                  f"{target_speed:,.0f} at {growth.target_width} (measured)")
    if plan.supply is not None:
        table.add_row("data", plan.supply.describe())
    table.add_row("estimated time", f"≤ {seconds / 60:.1f} min (pruned trials stop early)")
    for label, text in executor.plan_rows(plan.schedule, growth.base_params):
        table.add_row(label, text)
    console.print(table)
    if config.tokens_per_param < 20:
        console.print(f"[yellow]Small token budget: {config.tokens_per_param:g} tokens/parameter, far below the papers' 20 "
                      "(a quick CPU run). Raise --tokens-per-param on a GPU to reach their regime.[/yellow]")
    for message in growth_warnings(plan.stages[0].param_ratio, config.shrink if uses_shrink(config.grow_op) else 0.0,
                                   plan.stages[0].factor):
        console.print(f"[yellow]warning: {message}[/yellow]")
