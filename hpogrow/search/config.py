"""What ``hpogrow search`` does: :class:`SearchConfig`, one field per flag.

This module imports nothing heavy: the command line builds its parser from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from hpogrow.errors import UsageError
from hpogrow.options import GrowthOptions, Options, PositiveFloat, PositiveInt, RunOptions, StudyOptions, bad_flag, flag


@dataclass(frozen=True)
class ExecutorOptions(Options):
    """Who runs the trials, and Ray Tune's options."""

    GROUP: ClassVar[str | None] = "executor (Ray Tune)"

    executor: Literal["local", "ray"] = "ray"
    """Who runs the trials: ray (on Ray; the target runs as Ray tasks, concurrently) or local (in
    process, one at a time, no Ray start-up)."""
    scheduler: Literal["sha", "asha", "hyperband", "median", "none"] = "sha"
    """What stops base trials early, at equal token counts: sha (synchronous successive halving:
    a rung's best 1/``reduction_factor`` go on once every trial of the bracket reached it; either
    executor), asha or hyperband (Ray Tune's; executor ray), median (Optuna's median pruner;
    executor local), none (every trial runs its budget)."""
    reduction_factor: PositiveInt | None = None
    """Ratio between the rungs (default: 3 for sha, with rungs at budget/18, budget/3 and the budget,
    the first at half its geometric place; 2 for asha and hyperband)."""
    cpus_per_trial: float = 1.0
    """CPUs of each trial and target run: Ray reserves them; in process (``executor`` local) torch
    trains with that many threads (rounded, at least 1)."""
    gpus_per_trial: float | None = None
    """GPUs Ray reserves for each trial; 0.5 puts two trials on a GPU (default: 1 when this machine
    has CUDA and ``device`` is not cpu, else 0)."""
    max_concurrent: PositiveInt | None = None
    """Base trials running at once on Ray under asha (default: what the cluster's resources fit;
    under sha and hyperband the resources alone bound them); target runs start as soon as the
    cluster holds all of their workers."""
    workers_per_run: PositiveInt = 1
    """Data-parallel workers of each warmstart, scratch and stage run: N > 1 trains it on Ray Train
    with N DDP workers (gloo on CPU, NCCL on GPU), each holding ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs; every batch size must split evenly over them."""
    ray_address: str | None = None
    """Join a running Ray cluster: auto or HOST:PORT (default: start a local one)."""
    ray_storage: str | None = None
    """Where Ray Tune keeps results and rung checkpoints; shared storage on a multi-node cluster
    (default {workdir}/ray)."""
    verbose: bool = False
    """Show Ray's own console output."""


@dataclass(frozen=True)
class SearchConfig(StudyOptions, RunOptions, GrowthOptions, ExecutorOptions):
    """Everything ``hpogrow search`` does, with defaults that fit a 2-core laptop in minutes."""

    base_width: PositiveInt = 128
    """Width at which the hyperparameters are searched (and the μP base width)."""
    trials: PositiveInt = 8
    """Base trials the study should hold, all drivers together (trials abandoned by a killed
    driver do not count); rerunning continues up to this number."""
    tokens_per_param: PositiveFloat = 1.0
    """Token budget per model parameter, for base trials and target runs (1: a quick CPU run; the
    papers use 20)."""
    stages: PositiveInt = 1
    """Successive warmstarting (paper 002 B.3): grow this many times by ``grow_factor``, each
    stage trained on fresh tokens; the last stage is the warmstart trial."""
    seeds: PositiveInt = 2
    """Warmstart/scratch pairs: pair k has seed ``seed`` + k and fresh tokens of its own; the
    speedup is their geometric mean with a 95% interval (none from one pair)."""
    bases: PositiveInt | None = None
    """Independently trained bases the pairs grow: base 0 is the search's winner, base k its
    configuration retrained at the base width with seed ``seed`` + k (the search is not repeated);
    pair k grows base k mod bases. With 2 or more the speedup's interval resamples bases (t on
    their mean log speedups, bases − 1 degrees of freedom); at most ``seeds``. Default: 2, or 1
    with one pair."""
    checkpoint_every: PositiveInt = 1
    """Evaluations between the partial checkpoints of every target run (warmstart, scratch,
    stage), from which a rerun after a crash continues: 1 with 16 evaluations puts at most 1/16
    (6.25%) of a run at risk, for one write of weights and Adam moments per evaluation."""
    space: str | None = None
    """Search-space YAML file (default: search_spaces/{task}.yaml, shipped for the task)."""
    horizon_transfer: Literal["auto", "off"] = "off"
    """Target runs' learning rate across the token horizon: auto scales the winner's by (run
    tokens / base tokens)^(−α), α from the base trials when they determine it, else the value
    bench/horizon.py measured for the task; off keeps the winner's (μTransfer across width only).
    Recorded on every target trial (``horizon_*``, ``trained_learning_rate``)."""
    warmstart_lr_scale: PositiveFloat = 1.0
    """The warmstarted (and stage) runs' learning rate as a multiple of the winner's (after
    ``horizon_transfer``); scratch keeps the winner's. Measured (docs/search.md): 0.5 helped when
    growing width 64 → 96 (1.33× in FLOPs with the base against 1.17×, 6 seeds) but erased the
    warmstart's lead growing 128 → 192 (the default run), so the default stays 1."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.horizon_transfer not in ("auto", "off"):
            raise bad_flag("horizon_transfer", self.horizon_transfer, "use auto or off")
        if self.evaluations < 2:
            raise bad_flag("evaluations", self.evaluations, "need at least 2 to draw a curve")
        if self.bases is None:
            object.__setattr__(self, "bases", min(2, self.seeds))
        if self.bases > self.seeds:
            raise UsageError(f"{flag('bases')} {self.bases} with {flag('seeds')} {self.seeds}: pair k grows base k mod "
                             f"{flag('bases')}, so every base needs a pair of its own; raise {flag('seeds')} to at least "
                             f"{self.bases} or lower {flag('bases')} (1: every pair grows the winner, and the interval "
                             "does not cover the base)")
        if self.stages > 1 and (self.target_width or self.target_depth):
            raise UsageError(f"{flag('stages')} grows by {flag('grow_factor')} at every stage; drop "
                             f"{flag('target_width')}/{flag('target_depth')}")
        from hpogrow.search.plan import make_executor_for  # torch and the executors: not at import (hpogrow --help)

        make_executor_for(self)  # validates the executor's options
        if self.workers_per_run > 1 and self.executor != "ray":
            raise bad_flag("workers_per_run", self.workers_per_run, "trains target runs on Ray Train; use "
                           f"{flag('executor')} ray")
        if self.gpus_per_trial and self.device == "cpu":
            raise UsageError(f"{flag('gpus_per_trial')} {self.gpus_per_trial} with {flag('device')} cpu: use "
                             f"{flag('device')} auto or cuda")

    @property
    def storage_url(self) -> str:
        from hpogrow.storage import default_storage_url

        return self.storage or default_storage_url(self.workdir)

    @property
    def storage_key(self) -> str:
        from hpogrow.storage import storage_key

        return storage_key(self.storage_url)

