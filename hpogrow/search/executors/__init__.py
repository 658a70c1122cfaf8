"""Executors run a study's base trials and the target runs: :class:`LocalExecutor` in process,
:class:`hpogrow.search.executors.ray.RayExecutor` on Ray Tune (Ray itself is imported on demand).

:func:`make_executor` builds one by name; the pipeline uses nothing but the :class:`Executor`
interface.
"""

from __future__ import annotations

from typing import Any

from hpogrow.errors import UsageError
from hpogrow.search.executors.base import Executor
from hpogrow.search.executors.local import LocalExecutor

EXECUTORS = ("ray", "local")


def make_executor(name: str, **options: Any) -> Executor:
    """``make_executor("local", scheduler="median")`` or ``make_executor("ray", scheduler="asha", …)``
    (the options are the executor's dataclass fields; validated there)."""
    if name == "local":
        return LocalExecutor(**options)
    if name == "ray":
        from hpogrow.search.executors.ray import RayExecutor

        return RayExecutor(**options)
    raise UsageError(f"--executor {name}: use {' or '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "make_executor"]
