"""What ``hpogrow search`` does: :class:`SearchConfig`, one field per flag.

This module imports nothing heavy: the command line builds its parser from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpogrow.errors import UsageError


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
        from hpogrow.search.plan import make_executor_for  # torch and the executors: not at import (hpogrow --help)

        make_executor_for(self)  # validates the executor's options
        if self.gpus_per_trial and self.device == "cpu":
            raise UsageError(f"--gpus-per-trial {self.gpus_per_trial} with --device cpu: use --device auto or cuda")
        from hpogrow.growth import parse_operators

        parse_operators(self.grow_op)

    @property
    def storage_url(self) -> str:
        from hpogrow.storage import default_storage_url

        return self.storage or default_storage_url(self.workdir)

    @property
    def storage_key(self) -> str:
        from hpogrow.storage import storage_key

        return storage_key(self.storage_url)

