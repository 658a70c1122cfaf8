"""Executors run a study's base trials: :class:`LocalExecutor` in process."""

from hpogrow.executors.base import Executor
from hpogrow.executors.local import LocalExecutor, record_run

__all__ = ["Executor", "LocalExecutor", "record_run"]
