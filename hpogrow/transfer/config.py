"""What a transfer check sweeps: widths, a log grid of learning rates, equal tokens, seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from hpogrow.errors import UsageError
from hpogrow.parametrize import check_width
from hpogrow.tasks.base import Task

PARAMETERIZATIONS = ("μP", "SP")

_DEFAULTS = {  # each about 10 minutes on 2 busy CPU cores (bench/RESULTS.md)
    "mlp": {"widths": (16, 32, 64, 128, 256), "learning_rates": tuple(2.0**e for e in range(-11, -3)),
            "batch_size": 64, "tokens": 64 * 600, "seeds": 3},
    "lm": {"widths": (32, 64, 128), "learning_rates": tuple(2.0**e for e in range(-9, -3)),
           "batch_size": 16, "tokens": 16 * 128 * 64, "seeds": 1},
}
_TASK_DEFAULTS = ("widths", "learning_rates", "batch_size", "tokens", "seeds")


@dataclass(frozen=True)
class TransferConfig:
    """What ``hpogrow transfercheck`` sweeps; ``None`` fields take the task's defaults."""

    widths: tuple[int, ...] | None = None
    """Increasing widths; the first is the μP base width (mlp: 16 32 64 128 256; lm: 32 64 128)."""
    learning_rates: tuple[float, ...] | None = None
    """Increasing, evenly spaced in log: one grid step is their common ratio (mlp 2^-11 … 2^-4,
    lm 2^-9 … 2^-4)."""
    batch_size: int | None = None
    """Examples per step, the same for every run (mlp 64, lm 16)."""
    tokens: int | None = None
    """Token budget of every run, the same at every width (mlp 38,400; lm 131,072)."""
    seeds: int | None = None
    """Initialisation seeds per (width, learning rate): ``seed``, ``seed + 1``, … (mlp 3, lm 1)."""
    seed: int = 0
    """First initialisation seed."""
    tolerance: int = 1
    """Grid steps the optimum may move from the base width's and still count as transferred."""
    study: str | None = None
    """Study name; default ``{task}-transfer``. Rerunning reuses its finished runs."""
    storage: str | None = None
    """Optuna storage URL; default ``sqlite:///{workdir}/hpogrow.db``."""
    workdir: str = "studies"
    """Home of the default storage, plots and artifacts."""
    schedule: Literal["constant", "wsd"] = "constant"
    """Learning-rate schedule of every run."""
    evaluations: int = 16
    """Held-out evaluations per run (the last one is the final loss)."""
    device: str = "auto"
    """``auto`` picks CUDA when present."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Training precision."""
    compile: bool = False
    """``torch.compile`` every run's model."""
    threads: int = 1
    """CPU threads of each run (torch's intra-op threads, restored afterwards). The sweep's
    models are small: splitting their matmuls gains little, and on a busy shared machine two
    threads waiting on each other made a run 10-40x slower (bench/RESULTS.md)."""

    def __post_init__(self) -> None:
        if self.widths is not None and (len(self.widths) < 2 or list(self.widths) != sorted(set(self.widths))
                                        or self.widths[0] < 1):
            raise UsageError(f"--widths {list(self.widths)}: give at least two increasing positive widths, the base first")
        if self.learning_rates is not None:
            grid_step(self.learning_rates)
        for flag, value in (("--batch-size", self.batch_size), ("--tokens", self.tokens)):
            if value is not None and value < 1:
                raise UsageError(f"{flag} {value}: must be a positive integer")
        if self.seeds is not None and self.seeds < 1:
            raise UsageError(f"--seeds {self.seeds}: need at least 1 seed")
        if self.tolerance < 0:
            raise UsageError(f"--tolerance {self.tolerance}: grid steps cannot be negative")
        if self.evaluations < 1:
            raise UsageError(f"--evaluations {self.evaluations}: need at least 1")
        if self.threads < 1:
            raise UsageError(f"--threads {self.threads}: need at least 1")

    def for_task(self, task: Task) -> TransferConfig:
        """This config with the task's defaults filled in and its widths checked against the task."""
        missing = [name for name in _TASK_DEFAULTS if getattr(self, name) is None]
        if missing and task.name not in _DEFAULTS:
            raise UsageError(f"task {task.name!r} has no transfer-check defaults; pass {', '.join(missing)}")
        resolved = replace(self, **{name: _DEFAULTS[task.name][name] for name in missing})
        for width in resolved.widths:
            check_width(task, width)
        if resolved.batch_size * task.tokens_per_example > resolved.tokens:
            raise UsageError(f"--tokens {resolved.tokens}: less than one batch "
                             f"({resolved.batch_size * task.tokens_per_example} tokens); raise --tokens")
        return resolved


def grid_step(learning_rates: Sequence[float]) -> float:
    """The common ratio of a log-spaced grid; a :class:`UsageError` for anything else."""
    rates = list(learning_rates)
    if len(rates) < 3 or any(not rate > 0 for rate in rates) or rates != sorted(set(rates)):
        raise UsageError(f"--lrs {rates}: give at least three increasing positive learning rates")
    ratios = np.diff(np.log(rates))
    if ratios.max() > 1.25 * ratios.min():
        raise UsageError(f"--lrs {rates}: space them evenly in log (e.g. 1e-3 2e-3 4e-3 8e-3), "
                         "so that one grid step means the same everywhere")
    return float(np.exp(ratios.mean()))

