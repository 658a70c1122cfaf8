"""hpogrow: tune hyperparameters on a small μP model, grow it, warmstart the big one.

The public API is imported lazily so that ``hpogrow --help`` does not pay for torch.

The papers the docstrings cite ("paper 002": warmstarted μP, eq. 1; "paper 000": the growth
factor and scaling-law advice) are summarised, with the library facts the code relies on, in
``docs/method.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Task": "hpogrow.tasks", "LanguageTask": "hpogrow.tasks", "FourierTask": "hpogrow.tasks",
    "SearchConfig": "hpogrow.search.config", "run_pipeline": "hpogrow.search.pipeline", "PipelineResult": "hpogrow.search.pipeline",
    "TrainConfig": "hpogrow.train", "TrainState": "hpogrow.train", "train": "hpogrow.train",
    "build_model": "hpogrow.parametrize", "count_parameters": "hpogrow.parametrize",
    "shrink_zero_pad_perturb": "hpogrow.growth", "grow_checkpoint": "hpogrow.growth", "plan_growth": "hpogrow.growth",
    "GrowthOperator": "hpogrow.growth", "register_operator": "hpogrow.growth",
    "save_checkpoint": "hpogrow.checkpoint", "read_checkpoint": "hpogrow.checkpoint", "load_model": "hpogrow.checkpoint",
    "Executor": "hpogrow.search.executors", "LocalExecutor": "hpogrow.search.executors", "RayExecutor": "hpogrow.search.executors.ray",
    "TransferConfig": "hpogrow.transfer", "run_transfercheck": "hpogrow.transfer",
    "AdviseConfig": "hpogrow.advise", "Advice": "hpogrow.advise",
    "build_standard_model": "hpogrow.parametrize",
    "RunRecord": "hpogrow.record", "SpeedupRecord": "hpogrow.record", "GrowthLineage": "hpogrow.record",
    "Display": "hpogrow.progress", "QUIET": "hpogrow.progress",
    "UsageError": "hpogrow.errors", "TrainingDiverged": "hpogrow.errors", "PipelineError": "hpogrow.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hpogrow' has no attribute {name!r}")
