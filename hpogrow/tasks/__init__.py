"""Tasks: a μP model family with its data. :class:`Task` is the extension point."""

from __future__ import annotations

from typing import Any

from hpogrow.errors import UsageError
from hpogrow.tasks.base import Task
from hpogrow.tasks.fourier import FourierTask
from hpogrow.tasks.language import LanguageTask

BUILTIN_TASKS: dict[str, type[Task]] = {"lm": LanguageTask, "mlp": FourierTask}


def task_from_spec(spec: dict[str, Any]) -> Task:
    """Rebuild a built-in task from what its ``describe()`` returned."""
    options = dict(spec)
    name = options.pop("name")
    if name not in BUILTIN_TASKS:
        raise UsageError(
            f"this checkpoint was written by the custom task {name!r}; grow or train it from Python "
            "and pass your task object (e.g. hpogrow.grow_checkpoint(path, task=MyTask()))"
        )
    return BUILTIN_TASKS[name](**options)


__all__ = ["BUILTIN_TASKS", "FourierTask", "LanguageTask", "Task", "task_from_spec"]
