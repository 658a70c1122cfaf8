"""Executors run a study's base trials and the target runs: :class:`LocalExecutor` in process,
:class:`hpogrow.executors.ray.RayExecutor` on Ray Tune (imported on demand: Ray is heavy)."""

from hpogrow.executors.base import Executor
from hpogrow.executors.local import LocalExecutor, record_run

__all__ = ["Executor", "LocalExecutor", "record_run"]
