"""search → grow → warmstart vs scratch: the whole hpogrow pipeline, recorded in Optuna.

1. Search learning rate and batch size at the base width (TPE + a pruner on intermediate
   values, step = tokens seen; or, with ``executor="ray"``, Ray Tune trials under ASHA or
   HyperBand) in the study ``{study}/base``. Every trial, whatever its batch size, is evaluated
   at the same token counts (the rungs and the full budget are whole steps of every batch size).
   Several drivers may share the study: together they run ``trials`` trials.
2. Grow the best trial that ran its full budget by ``grow_factor`` (ratio of parameter counts)
   with shrink–zero-pad–perturb.
3. For each of ``seeds`` pairs, train the grown model with the winner's LR and batch size
   (μTransfer) on fresh tokens after the base's, and a μP model from scratch at the same width on
   the same tokens, as trials ``role=scratch`` and ``role=warmstart`` of the study
   ``{study}/target-w{width}``.
4. Record the speedup over the pairs (smoothed curves, geometric mean and 95% interval) on the
   warmstart trials and the target study, with the dashboard notes, and print a summary.

Steps 2–4 happen once per study however many drivers share it: the driver that holds the
target lock does them, the others wait and print the same report.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import optuna
import torch
from rich.console import Console
from rich.table import Table

from hpogrow import record
from hpogrow._crash import crash_point
from hpogrow.checkpoint import check_owner, reachable_checkpoint
from hpogrow.coordination import Coordinator, coordinator_for
from hpogrow.data.supply import TokenSupply, task_token_supply
from hpogrow.errors import PipelineError, TrainingDiverged, UsageError
from hpogrow.executors import Executor, Schedule, make_executor
from hpogrow.executors.base import round_to
from hpogrow.growth import GrowthPlan, grow_checkpoint, growth_warnings, parse_operators, plan_growth, uses_shrink
from hpogrow.parametrize import build_model, check_width, resolve_device
from hpogrow.progress import make_progress
from hpogrow.report import attach_plot, plot_curves, print_report, write_dashboard_notes
from hpogrow.runs import BaseTrial, CheckpointOwner, RunOutcome, paired_eval_gap, run_scratch, run_warmstart
from hpogrow.sampler import make_sampler
from hpogrow.space import SearchSpace, load_space
from hpogrow.speedup import SeedSpeedup, aggregate_speedups, seed_speedup
from hpogrow.storage import default_storage_url, load_or_create_study, open_storage, storage_key
from hpogrow.tasks import Task
from hpogrow.throughput import training_flops
from hpogrow.train import TrainConfig, make_optimizer

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``hpogrow search`` does, with defaults that fit a 2-core laptop in minutes."""

    base_width: int = 128
    """Width at which the hyperparameters are searched (and the μP base width)."""
    trials: int = 8
    """Base trials the study should hold, all drivers together (trials abandoned by a killed
    driver do not count); rerunning continues up to this number."""
    tokens_per_param: float = 1.0
    """Token budget per model parameter, for base trials and target runs (papers: 20)."""
    grow_factor: float | Literal["auto"] = 2.0
    """Growth factor g = target parameters / base parameters (paper 000: 2 is most reliable);
    ``"auto"``: the g recommended by the task's stored growth advice (``hpogrow advise``)."""
    target_width: int | None = None
    """Overrides the width chosen from ``grow_factor``."""
    shrink: float = 0.4
    """λ_shrink of eq. 1 (paper 002)."""
    grow_op: str = "szp"
    """Growth operator(s): ``szp``, ``zero-pad``, ``clone``, ``stack``, ``zero-block``, or
    WIDTH+DEPTH such as ``szp+zero-block`` (see :mod:`hpogrow.growth`)."""
    target_depth: int | None = None
    """Overrides the depth chosen for depth operators."""
    noise_scale: float | None = None
    """Perturbation scale of the width operator (default 1 for szp, 0.1 for clone)."""
    stages: int = 1
    """Successive warmstarting (paper 002 B.3): grow ``stages`` times by ``grow_factor``, each
    stage trained on fresh tokens; the last stage is the warmstart trial."""
    carry_optimizer: bool = False
    """Carry Adam moments through growth, zero-padded (an experiment; the papers start fresh)."""
    seed: int = 0
    """Seed of the sampler and of every model initialisation."""
    seeds: int = 2
    """Warmstart/scratch pairs: pair ``k`` has seed ``seed + k`` and fresh tokens of its own; the
    speedup is their geometric mean with a 95% interval (none from one pair)."""
    study: str | None = None
    """Study name prefix; default ``{task}-w{base_width}``."""
    storage: str | None = None
    """Optuna storage URL; default ``sqlite:///{workdir}/hpogrow.db``."""
    workdir: str = "studies"
    """Home of the default storage, checkpoints, plots and artifacts."""
    space: str | None = None
    """Search-space YAML file; default the one shipped for the task."""
    pruner: Literal["median", "none"] = "median"
    """Optuna pruner on intermediate validation losses (``executor="local"``; Ray trials are
    stopped by ``scheduler``)."""
    schedule: Literal["constant", "wsd"] = "constant"
    """Learning-rate schedule of every run."""
    evaluations: int = 16
    """Held-out evaluations per run."""
    device: str = "auto"
    """``auto`` picks CUDA when present."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Training precision."""
    compile: bool = False
    """``torch.compile`` every run's model (pays off on a GPU for long runs)."""
    executor: Literal["local", "ray"] = "ray"
    """Who runs the trials: ``ray`` (Ray Tune trials under ``scheduler``; the target runs as Ray
    tasks, concurrently) or ``local`` (in process, one at a time, Optuna's pruner, no Ray start-up)."""
    scheduler: Literal["asha", "hyperband", "none"] = "asha"
    """Ray Tune scheduler of the base trials, with the fidelity measured in tokens."""
    reduction_factor: int = 2
    """Ratio between the scheduler's rungs (2: the papers' 2.5 → 5 → 10 → 20 tokens/parameter)."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves for each trial."""
    gpus_per_trial: float | None = None
    """GPUs Ray reserves for each trial; fractions share a GPU. Default: 1 when this machine has
    CUDA and ``device`` is not ``cpu``, else 0."""
    max_concurrent: int | None = None
    """Ray trials running at once (default: what the cluster's resources fit)."""
    ray_address: str | None = None
    """Join a running Ray cluster (``auto`` or ``HOST:PORT``); default: start a local one."""
    ray_storage: str | None = None
    """Where Ray Tune keeps results and rung checkpoints (default ``{workdir}/ray``)."""
    verbose: bool = False
    """Show Ray's own console output."""
    allow_repeat: bool = False
    """Run even when the plan reads more training tokens than the data holds (each run records
    its passes over the data as ``data_passes``); by default such a plan is refused."""

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UsageError(f"--trials {self.trials}: need at least 1 trial")
        if isinstance(self.grow_factor, str) and self.grow_factor != "auto":
            raise UsageError(f"--grow-factor {self.grow_factor}: give a number above 1 or auto")
        if not self.tokens_per_param > 0:
            raise UsageError(f"--tokens-per-param {self.tokens_per_param}: must be positive")
        if not 0 <= self.shrink <= 1:
            raise UsageError(f"--shrink {self.shrink}: must be between 0 and 1 (paper 002 uses 0.4)")
        if self.pruner not in ("median", "none"):
            raise UsageError(f"--pruner {self.pruner}: use median or none")
        if self.evaluations < 2:
            raise UsageError(f"--evaluations {self.evaluations}: need at least 2 to draw a curve")
        if self.seeds < 1:
            raise UsageError(f"--seeds {self.seeds}: need at least 1 warmstart/scratch pair")
        if self.stages < 1:
            raise UsageError(f"--stages {self.stages}: need at least 1")
        if self.stages > 1 and (self.target_width or self.target_depth):
            raise UsageError("--stages grows by --grow-factor at every stage; drop --target-width/--grow-depth")
        make_executor_for(self)  # validates the executor's options
        if self.gpus_per_trial and self.device == "cpu":
            raise UsageError(f"--gpus-per-trial {self.gpus_per_trial} with --device cpu: use --device auto or cuda")
        parse_operators(self.grow_op)

    @property
    def storage_url(self) -> str:
        return self.storage or default_storage_url(self.workdir)

    @property
    def storage_key(self) -> str:
        return storage_key(self.storage_url)


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
                         self.config.storage_key, self.base_study)

    @property
    def checkpoint_dir(self) -> Path:
        """``{workdir}/checkpoints/{storage key}/{study}``: two storages never share a folder.
        Absolute: Ray workers run in folders of their own."""
        return Path(self.config.workdir).resolve() / "checkpoints" / self.config.storage_key / self.study


@dataclass(frozen=True)
class PipelineResult:
    plan: Plan
    winner: optuna.trial.FrozenTrial
    warmstarts: list[optuna.trial.FrozenTrial]
    """One warmstarted trial per pair (``config.seeds``), pair 0 first."""
    scratches: list[optuna.trial.FrozenTrial]

    @property
    def warmstart(self) -> optuna.trial.FrozenTrial:
        """Pair 0's warmstarted trial (its ``speedup_*`` attributes are over every pair)."""
        return self.warmstarts[0]

    @property
    def scratch(self) -> optuna.trial.FrozenTrial:
        return self.scratches[0]


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
    if config.executor != "ray":
        return make_executor(config.executor, pruner_name=config.pruner)
    gpus = config.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if config.device != "cpu" and torch.cuda.is_available() else 0.0
    return make_executor("ray", scheduler=config.scheduler, reduction_factor=config.reduction_factor,
                         cpus_per_trial=config.cpus_per_trial, gpus_per_trial=gpus,
                         max_concurrent=config.max_concurrent, address=config.ray_address,
                         storage_path=config.ray_storage or str(Path(config.workdir) / "ray"), verbose=config.verbose)


def print_plan(plan: Plan, console: Console, remaining_trials: int, executor: Executor) -> None:
    config, growth = plan.config, plan.growth
    base_speed = measure_tokens_per_second(plan.task, growth.base_width, growth.base_width, plan.template)
    target_speed = measure_tokens_per_second(plan.task_at(growth), growth.target_width, growth.base_width, plan.template)
    stage_tokens = sum(plan.stage_tokens(k) for k in range(len(plan.stages) - 1))
    seconds = 1.15 * (remaining_trials * plan.base_tokens / base_speed
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
    table.add_row("target runs", f"{plan.target_study}: {pairs}, {growth.target_params:,} parameters, "
                  f"{plan.target_tokens:,} tokens each")
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


def best_full_budget_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The lowest-loss COMPLETE trial (PRUNED trials never qualify), its checkpoint checked
    readable here (:func:`hpogrow.checkpoint.reachable_checkpoint`)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.user_attrs.get("checkpoint")]
    if not complete:
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
                  for state in (TrialState.PRUNED, TrialState.FAIL)}
        raise PipelineError(f"no base trial of {study.study_name!r} ran its full budget ({counts['pruned']} pruned, "
                         f"{counts['fail']} failed); add --trials, or narrow the learning-rate range with --space")
    winner = min(complete, key=lambda t: t.value)
    node = f" on Ray node {winner.user_attrs['node']}" if winner.user_attrs.get("node") else ""
    reachable_checkpoint(winner.user_attrs["checkpoint"], f"trial {winner.number} of {study.study_name}{node}")
    return winner


def _finished_run(study: optuna.Study, role: str, winner: optuna.trial.FrozenTrial,
                  pair: int) -> optuna.trial.FrozenTrial | None:
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get("role") == role and trial.user_attrs.get("base_trial") == winner.number \
                and trial.user_attrs.get("pair", 0) == pair and trial.params == winner.params:
            return trial
    return None


def run_pipeline(task: Task, config: SearchConfig = SearchConfig(), *, executor: Executor | None = None,
                 console: Console | None = None) -> PipelineResult:
    """Search at the base width, grow the winner and compare warmstart with scratch.

    Several processes may run the same call against one storage: they share the base search
    (``config.trials`` in all), and one of them grows the winner and trains the target runs
    while the others wait for it.

    Example (CPU, about a minute)::

        from hpogrow import FourierTask, SearchConfig, run_pipeline
        result = run_pipeline(FourierTask(), SearchConfig(base_width=32, trials=3, workdir="/tmp/hp"))
        print(result.warmstart.user_attrs["speedup_tokens"])
    """
    console = console or Console()
    executor = executor or make_executor_for(config)
    plan = make_plan(task, config, executor)
    storage = open_storage(config.storage_url)
    coordinator = coordinator_for(config.storage_url, config.workdir)
    coordinator.register()
    try:
        signature = {"task": task.describe(), "base_width": config.base_width, "tokens": plan.base_tokens,
                     "space": plan.space.as_dict(), "schedule": config.schedule, "evaluations": config.evaluations,
                     "seed": config.seed, "stopping": executor.stopping}
        base_study = load_or_create_study(storage, plan.base_study, signature, make_sampler(config.seed),
                                          executor.pruner(plan.base_tokens))
        counted = sum(record.counts_towards_total(t, coordinator) for t in base_study.get_trials(deepcopy=False))
        print_plan(plan, console, max(0, config.trials - counted), executor)
        with executor.session(), make_progress(console) as progress:
            executor.run(base_study, plan.space, config.trials, plan.base_trial(), progress, coordinator)
            _wait_for_other_drivers(base_study, coordinator, progress.console)
            winner = best_full_budget_trial(base_study)
            check_owner(winner.user_attrs["checkpoint"], config.storage_key, plan.base_study, winner.number)
            with coordinator.lock(record.TARGET_LOCK.format(study=plan.study), on_wait=lambda: progress.console.print(
                    "another driver is growing the winner and training the target runs; waiting for it "
                    "(Ctrl-C leaves them to it)")):
                warmstarts, scratches, target_study = _run_target(plan, storage, winner, executor, progress,
                                                                  progress.console)
                plotted = [trial.number for trial in warmstarts]
                if target_study.user_attrs.get("plot_for") != plotted:
                    workdir = Path(config.workdir)
                    path = plot_curves(winner, warmstarts, scratches,
                                       workdir / "plots" / f"{plan.target_study.replace('/', '_')}.png",
                                       target_study.user_attrs.get("speedup"))
                    attach_plot(target_study, path, workdir / "artifacts")
                    write_dashboard_notes(target_study)
                    target_study.set_user_attr("plot_for", plotted)
    finally:
        coordinator.close()
    print_report(config.storage_url, plan.study, config.workdir, console)
    return PipelineResult(plan, winner, warmstarts, scratches)


def _wait_for_other_drivers(study: optuna.Study, coordinator: Coordinator, console: Console) -> None:
    """Growth needs the whole search: wait while other live drivers still run base trials."""
    announced = False
    while True:
        with coordinator.lock(record.CLAIM_LOCK.format(study=study.study_name)):
            record.fail_abandoned(study, coordinator, role="base")
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        if not announced:
            drivers = sorted({str(t.user_attrs.get("driver")) for t in running})
            console.print(f"waiting for {len(running)} base trials of other drivers ({', '.join(drivers)}) to finish")
            announced = True
        time.sleep(2.0)


def _run_target(plan: Plan, storage, winner: optuna.trial.FrozenTrial, executor: Executor, progress,
                console: Console) -> tuple[list[optuna.trial.FrozenTrial], list[optuna.trial.FrozenTrial], optuna.Study]:
    """Grow the winner and train ``config.seeds`` warmstart/scratch pairs (and any intermediate
    stages), reusing the runs the study already holds; record the speedup over all pairs.
    Called holding the target lock: this driver alone writes there.

    Pair ``k`` has seed ``config.seed + k`` (growth perturbation, scratch initialisation) and reads
    its own fresh segment of the training stream after the base's (:class:`TokenBudget`); its
    warmstarted and scratch runs read the same tokens, the final stage's with ``--stages``.
    """
    config, final = plan.config, plan.growth
    signature = {"task": plan.task.describe(), "base_width": config.base_width, "target_width": final.target_width,
                 "target_depth": final.target_depth, "tokens": plan.target_tokens, "grow_op": config.grow_op,
                 "shrink": config.shrink, "noise_scale": config.noise_scale, "stages": config.stages,
                 "carry_optimizer": config.carry_optimizer, "schedule": config.schedule,
                 "evaluations": config.evaluations, "seed": config.seed, "base_study": plan.base_study}
    study = load_or_create_study(storage, plan.target_study, signature)
    abandoned = record.fail_abandoned(study, None, sole_writer=True)
    if abandoned:
        console.print(f"marked target trials {abandoned} FAIL: the driver running them died")
    hyperparameters = {"learning_rate": winner.params["learning_rate"], "batch_size": winner.params["batch_size"]}
    final_task = plan.task_at(final)
    target_root = plan.checkpoint_dir / plan.target_study.split("/", 1)[1]
    lineage = {"grown_from": f"{plan.base_study}#{winner.number}", "grown_from_checkpoint": winner.user_attrs["checkpoint"],
               "grow_op": config.grow_op, "grow_factor": round(final.param_ratio, 4),
               "width_ratio": round(final.width_ratio, 4), "depth": final.target_depth, "shrink": config.shrink,
               "stages": len(plan.stages), "stage_widths": [s.target_width for s in plan.stages],
               "carry_optimizer": config.carry_optimizer, "schedule": config.schedule}

    def start(role: str, pair: int, width: int, make_run, tokens: int, extra: dict):
        """Submit the run ``make_run(owner)`` to the executor as a trial of ``role``; the returned
        function waits for it and gives the trial and the run's outcome (``None``: reused)."""
        done = _finished_run(study, role, winner, pair)
        if done is not None:
            console.print(f"{role} (pair {pair}): reusing finished trial {done.number} of {plan.target_study}")
            return lambda: (done, None)
        attrs = {"role": role, "pair": pair, "seed": config.seed + pair, "width": width, "base_trial": winner.number,
                 "base_study": plan.base_study, **extra}
        trial = record.start_target_trial(study, hyperparameters, plan.space.distributions(), attrs)
        job = executor.submit(make_run(CheckpointOwner(config.storage_key, plan.target_study, trial.number)),
                              f"{role} w{width}" + (f" #{pair}" if config.seeds > 1 else ""), tokens, progress)

        def wait():
            try:
                return trial, job.result(lambda evaluation: record.report(trial, evaluation))
            except TrainingDiverged as error:
                record.fail(study, trial, str(error), fidelity_reached=error.tokens_seen, diverged=True)
                raise PipelineError(f"the {role} run at width {width} diverged ({error}); "
                                    "lower the learning rate range with --space") from None
            except BaseException as error:
                record.fail(study, trial, f"{type(error).__name__}: {error}")
                raise
        return wait

    def finish(trial, outcome) -> optuna.trial.FrozenTrial:
        record.finish(study, trial, outcome.summary, complete=not outcome.stopped_early)
        return study.trials[trial.number]

    def start_pair(pair: int):
        """Stages of pair ``pair`` (trained here, in order), then its final growth; its warmstart
        and scratch runs submitted. Returns their waits and the cost before the warmstart."""
        seed, pair_dir = config.seed + pair, target_root / f"pair{pair}"
        position = winner.user_attrs["data_position"] + pair * plan.supply.budget.pair_examples
        source, current = winner.user_attrs["checkpoint"], plan.task
        cost = (winner.user_attrs["tokens"], winner.user_attrs["flops"])
        for index, step in enumerate(plan.stages):
            last = index == len(plan.stages) - 1
            grown = grow_checkpoint(source, pair_dir / ("grown" if last else f"grown-stage{index + 1}"),
                                    target_width=step.target_width, target_depth=step.target_depth,
                                    operator=config.grow_op, shrink=config.shrink, noise_scale=config.noise_scale,
                                    seed=seed, carry_optimizer=config.carry_optimizer, task=current)
            crash_point("after-growth")
            current = plan.task_at(step)
            if last:
                break
            stage_config = replace(plan.template, **hyperparameters, tokens=plan.stage_tokens(index), eval_tokens=(),
                                   seed=seed)
            trial, outcome = start(f"stage {index + 1}", pair, step.target_width, lambda owner, task=current,
                                   path=grown.path, stage_config=stage_config, at=position, index=index: partial(
                                       run_warmstart, task, path, stage_config, pair_dir / f"stage{index + 1}",
                                       data_position=at, owner=owner),
                                   stage_config.tokens, {"stage": index + 1})()
            stage = trial if outcome is None else finish(trial, outcome)
            source, position = stage.user_attrs["checkpoint"], stage.user_attrs["data_position"]
            cost = (cost[0] + stage.user_attrs["tokens"], cost[1] + stage.user_attrs["flops"])
        final_config = replace(plan.template, **hyperparameters, tokens=plan.target_tokens, eval_tokens=(), seed=seed)
        scratch = start("scratch", pair, final.target_width, lambda owner: partial(
            run_scratch, current, final.target_width, config.base_width, final_config, position, pair_dir / "scratch",
            owner=owner), final_config.tokens, {})
        warmstart = start("warmstart", pair, final.target_width, lambda owner: partial(
            run_warmstart, current, grown.path, final_config, pair_dir / "warmstart", data_position=position,
            owner=owner), final_config.tokens, {**lineage, "base_tokens": cost[0], "base_flops": cost[1]})
        return scratch, warmstart, cost

    started = [start_pair(pair) for pair in range(config.seeds)]
    scratches, warmstarts = [], []
    for wait_scratch, wait_warmstart, cost in started:
        trial, outcome = wait_scratch()
        scratches.append(trial if outcome is None else finish(trial, outcome))
        crash_point("between-target-runs")
        warmstarts.append((*wait_warmstart(), cost))
    estimate = aggregate_speedups([_pair_speedup(trial, outcome, scratch, cost) for (trial, outcome, cost), scratch
                                   in zip(warmstarts, scratches)])
    attrs = {**estimate.as_attrs(), "speedup_summary": estimate.describe("tokens"),
             **_eval_error_attrs(final_task, config.device, warmstarts, scratches)}
    finished = []
    for index, (trial, outcome, _) in enumerate(warmstarts):
        if outcome is None:  # reused: its attributes say what was known when it finished
            finished.append(trial)
            continue
        outcome.extra.update(attrs, pair_speedup_tokens=estimate.per_seed[index].tokens,
                             pair_censoring=estimate.per_seed[index].censoring)
        finished.append(finish(trial, outcome))
    study.set_user_attr("speedup", attrs)
    return finished, scratches, study


def _pair_speedup(warmstart, outcome: RunOutcome | None, scratch: optuna.trial.FrozenTrial,
                  cost: tuple[int, float]) -> SeedSpeedup:
    """The speedup of one pair (:func:`hpogrow.speedup.seed_speedup`) from its warmstarted run's
    outcome (or, for a reused trial, its record) and its scratch trial; FLOPs are 6·N·D."""
    if outcome is None:
        curve, compute_params = sorted(warmstart.intermediate_values.items()), warmstart.user_attrs["compute_params"]
    else:
        curve, compute_params = [(e.tokens_seen, e.val_loss) for e in outcome.evaluations], outcome.compute_params
    return seed_speedup(curve, sorted(scratch.intermediate_values.items()),
                        flops_per_token=training_flops(compute_params, 1), base_tokens=cost[0], base_flops=cost[1],
                        seed=scratch.user_attrs.get("seed"))


def _eval_error_attrs(task: Task, device: str, warmstarts: list,
                      scratches: list[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """The warmstart−scratch gap in final validation loss (mean over pairs) beside the eval set's
    standard error of it (:func:`hpogrow.runs.paired_eval_gap`, the largest over pairs), and how
    many such errors the gap spans: above ~3 the eval set resolves it."""
    paired = []
    for (trial, outcome, _), scratch in zip(warmstarts, scratches):
        checkpoint = trial.user_attrs["checkpoint"] if outcome is None else outcome.checkpoint
        paired.append(paired_eval_gap(task, checkpoint, scratch.user_attrs["checkpoint"], device))
    gaps = [gap for gap, _ in paired]
    attrs: dict[str, Any] = {"final_loss_gap": statistics.fmean(gaps), "final_loss_gap_per_pair": gaps}
    errors = [error for _, error in paired]
    if all(error is not None for error in errors):
        attrs.update(eval_gap_se=max(errors), gap_in_eval_se=abs(attrs["final_loss_gap"]) / max(errors)
                     if max(errors) > 0 else math.inf)
    return attrs
