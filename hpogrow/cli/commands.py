"""The commands of ``hpogrow``, each a frozen dataclass whose fields are its flags.

A command reuses its library config as it is (``SearchCommand`` is a :class:`SearchConfig` plus
the task options) and adds what only the command line needs (an output folder). ``NAME`` is its
name; the first line of its docstring is its one-line help, the rest its description (both read
from this file's source by ``hpogrow --help``, which imports no config). ``run`` imports the heavy
libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hpogrow.advise.config import AdviseConfig
from hpogrow.coordcheck_config import CoordCheckConfig
from hpogrow.errors import UsageError
from hpogrow.options import (GrowthOptions, PositiveFloat, PositiveInt, RunOptions, StudyOptions, TaskOptions,
                             ThreadOptions, bad_flag, flag)
from hpogrow.search.config import ExecutorOptions, SearchConfig
from hpogrow.transfer.config import TransferConfig

Config = TypeVar("Config")


class Command:
    """What every command adds to its config: a name and a ``run`` that returns the exit status."""

    NAME: ClassVar[str]

    def run(self) -> int:
        raise NotImplementedError

    def check_flags(self, given: frozenset[str]) -> None:
        """Refuse flags that were given but would have no effect (their values alone cannot tell)."""


def library_config(config_class: type[Config], command: Any) -> Config:
    """The ``config_class`` inside ``command`` (a subclass of it): the same values, the library's own type."""
    return config_class(**{item.name: getattr(command, item.name) for item in fields(config_class)})


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # hpogrow prints its own tables


def _on_screen(command: Any, config_class: type[Config], entry: Callable[..., Any]) -> int:
    """Run the library's ``entry(task, config, console=, display=)`` for ``command``, its
    progress drawn on this terminal; the exit status."""
    from hpogrow.cli.progress import RichDisplay

    _quiet_optuna()
    task, config = command.build_task(command.seed), library_config(config_class, command)
    with RichDisplay() as display:
        entry(task, config, console=display.console, display=display)
    return 0


@dataclass(frozen=True)
class SearchCommand(SearchConfig, TaskOptions, Command):
    """Search at the base width, grow the winner, warmstart vs scratch.

    Optuna search of learning rate and batch size at the base width; the best full-budget trial is
    grown and trained against a μP model from scratch.
    """

    NAME = "search"

    def check_flags(self, given: frozenset[str]) -> None:
        either = {"executor", "scheduler", "reduction_factor", "cpus_per_trial"}
        ray_only = [item.name for item in fields(ExecutorOptions) if item.name not in either and item.name in given]
        if ray_only and self.executor != "ray":
            raise UsageError(f"{flag(ray_only[0])} applies to Ray trials; drop {flag('executor')} local")

    def run(self) -> int:
        from hpogrow.search.pipeline import run_pipeline

        return _on_screen(self, SearchConfig, run_pipeline)


@dataclass(frozen=True, kw_only=True)
class GrowCommand(GrowthOptions, Command):
    """Grow a checkpoint with shrink–zero-pad–perturb (or another operator).

    Write a grown checkpoint (fresh optimizer state unless --carry-optimizer, same μP base shapes).
    """

    NAME = "grow"

    checkpoint: str = field(metadata={"positional": True})
    """Checkpoint folder written by hpogrow."""
    seed: int = 0
    """Seed of the perturbation."""
    out: str | None = None
    """Output folder (default CHECKPOINT-grown-wWIDTH)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.grow_factor == "auto":
            raise bad_flag("grow_factor", "auto", "only a search reads the stored advice; give a number")

    def run(self) -> int:
        from rich.console import Console

        from hpogrow.checkpoint import read_checkpoint
        from hpogrow.growth import grow_checkpoint, parse_operators, plan_growth
        from hpogrow.tasks import task_from_spec

        source = read_checkpoint(self.checkpoint)
        width_operator, depth_operator = parse_operators(self.grow_op)
        plan = plan_growth(task_from_spec(source.config["task"]), source.width, self.grow_factor, self.target_width,
                           self.target_depth, grow_width=width_operator is not None,
                           grow_depth=depth_operator is not None)
        out = Path(self.out or f"{source.path}-grown-w{plan.target_width}")
        if out.exists():
            raise UsageError(f"{flag('out')} {out} already exists; remove it or pass another {flag('out')}")
        result = grow_checkpoint(source.path, out, factor=self.grow_factor, target_width=self.target_width,
                                 target_depth=self.target_depth, operator=self.grow_op, shrink=self.shrink,
                                 noise_scale=self.noise_scale, seed=self.seed, carry_optimizer=self.carry_optimizer)
        console = Console()
        for message in result.warnings:
            console.print(f"[yellow]warning: {message}[/yellow]")
        depth = f", depth {plan.base_depth} → {plan.target_depth}" if plan.target_depth != plan.base_depth else ""
        console.print(f"grew width {plan.base_width} → {plan.target_width}{depth} with {self.grow_op} (width "
                      f"×{plan.width_ratio:.2f}, parameters {plan.base_params:,} → {plan.target_params:,} = "
                      f"×{plan.param_ratio:.2f}): {result.path}")
        return 0


@dataclass(frozen=True)
class TrainCommand(TaskOptions, RunOptions, Command):
    """Train one run at a width, from scratch or from a checkpoint.

    Train one μP run; --from continues a (grown) checkpoint: its token stream, its hyperparameters
    unless given, and its Adam moments when it has them.
    """

    NAME = "train"

    from_checkpoint: str | None = None
    """Checkpoint folder to start from (e.g. a grown one); its task and widths come with it."""
    width: PositiveInt | None = None
    """Width of a run from scratch."""
    base_width: PositiveInt | None = None
    """μP base width of a run from scratch (default: ``width``)."""
    learning_rate: PositiveFloat | None = None
    """Learning rate (default: the checkpoint's)."""
    batch_size: PositiveInt | None = None
    """Batch size (default: the checkpoint's)."""
    tokens: PositiveInt | None = None
    """Token budget (default: ``tokens_per_param`` × parameters)."""
    tokens_per_param: PositiveFloat = 1.0
    """Token budget per parameter, when no ``tokens``."""
    out: str | None = None
    """Checkpoint folder to write (default {workdir}/runs/{task}-w{width}-lr{lr}-b{batch size})."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.from_checkpoint is None and self.width is None:
            raise UsageError(f"pass {flag('width')} for a run from scratch, or {flag('from_checkpoint')} CHECKPOINT")

    def check_flags(self, given: frozenset[str]) -> None:
        from_scratch_only = [item.name for item in fields(TaskOptions)] + ["width", "base_width"]
        if self.from_checkpoint is not None and (ignored := [name for name in from_scratch_only if name in given]):
            raise UsageError(f"{flag(ignored[0])}: a run {flag('from_checkpoint')} a checkpoint takes its task and "
                             "widths from the checkpoint; drop it")

    def run(self) -> int:
        from hpogrow.cli._train import train

        return train(self)


@dataclass(frozen=True)
class CoordCheckCommand(CoordCheckConfig, ThreadOptions, Command):
    """Coordinate check: SP, μP and warmstarted μP against μP's own width scaling.

    Trains SP, μP, warmstarted μP at each λ (and optional broken μP variants) at several widths for
    tens of Adam steps and compares, per module, coordinate block (base, new) and step, how
    activation size scales with width against μP with the same seed and batches: the largest
    upward gap per seed, its paired 95% interval against a fixed threshold (pass, fail or
    undecided); downward gaps of all coordinates reported apart as dilution. Writes a CSV,
    verdicts.json and one PNG per configuration.
    """

    NAME = "coordcheck"

    out: str = "studies/coordcheck"
    """Output folder of the CSVs and plots."""

    def run(self) -> int:
        from hpogrow.cli._coordcheck import coordcheck

        return coordcheck(library_config(CoordCheckConfig, self), self.threads, Path(self.out))


@dataclass(frozen=True)
class TransferCheckCommand(TransferConfig, TaskOptions, Command):
    """μTransfer check: does the base width's best learning rate stay best at larger widths?

    Learning-rate sweeps at the base width and larger widths, in μP and standard parameterization
    (SP), on equal tokens; final loss against learning rate (PNG), and a verdict on the optimum's
    drift per doubling of width: its 95% interval over seeds against ±--max-drift (pass, fail or
    undecided); in SP the optimum moves. Recorded as the study
    {task}-transfer (one trial per run, role=transfer); a rerun reuses finished runs.
    """

    NAME = "transfercheck"

    def run(self) -> int:
        from hpogrow.transfer.sweep import run_transfercheck

        return _on_screen(self, TransferConfig, run_transfercheck)


@dataclass(frozen=True)
class AdviseCommand(AdviseConfig, TaskOptions, Command):
    """Growth advice: fitted scaling laws say whether to grow, by how much, and what it saves.

    Runs (or reuses) a ladder of cheap runs: μP from scratch at several widths, and warmstarted from
    the smallest width grown by several g against scratch at several tokens/param. Fits
    L(N, D) = E + A/N^α + B/D^β (Hoffmann et al.'s approach 3) and a model of warmstart's gain,
    checks both out of sample, and predicts for --target-params/--target-width at --tokens-per-param:
    scratch's loss, each g's speedup counting the base, the recommended g and the largest g beyond
    which scratch is cheaper. Recorded as the study {task}-advice (attribute advice, read by search
    --grow-factor auto).
    """

    NAME = "advise"

    def run(self) -> int:
        from hpogrow.advise.run import advise

        return _on_screen(self, AdviseConfig, advise)


DEFAULT_SEARCH_STUDY = f"{TaskOptions.task}-w{SearchConfig.base_width}"
"""The study ``hpogrow search`` makes with its defaults (``report``'s default)."""


@dataclass(frozen=True)
class ReportCommand(StudyOptions, Command):
    """Print a study's tables.

    Tables of a study written by hpogrow search.
    """

    NAME = "report"

    def run(self) -> int:
        from hpogrow.search.report import print_report
        from hpogrow.storage import default_storage_url

        _quiet_optuna()
        print_report(self.storage or default_storage_url(self.workdir), self.study or DEFAULT_SEARCH_STUDY, self.workdir)
        return 0


COMMANDS: tuple[type, ...] = (SearchCommand, GrowCommand, TrainCommand, CoordCheckCommand, TransferCheckCommand,
                              AdviseCommand, ReportCommand)


def command_class(name: str) -> type:
    """The command called ``name``."""
    return next(command for command in COMMANDS if command.NAME == name)
