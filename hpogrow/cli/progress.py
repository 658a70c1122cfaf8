"""The command line's :class:`hpogrow.progress.Display`: rich progress bars (completed/total and
the latest loss) with lines printed above them."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichBar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def update(self, completed: float, loss: float | None = None) -> None:
        self._progress.update(self._task, completed=completed, **({} if loss is None else {"loss": loss}))

    def advance(self, amount: float = 1, loss: float | None = None) -> None:
        self._progress.update(self._task, advance=amount, **({} if loss is None else {"loss": loss}))

    def close(self) -> None:
        self._progress.update(self._task, visible=False)


class RichDisplay:
    """Bars show completed/total (tokens for runs, trials for a search) and the latest loss; use
    it as a context manager (the bars live inside the block)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.completed:>11,.0f}/{task.total:,.0f}"),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=2,  # rich's default 10 redraws/s take CPU from training (bench/loop_overhead.py)
        )

    def __enter__(self) -> RichDisplay:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def bar(self, label: str, total: float, completed: float = 0) -> RichBar:
        return RichBar(self._progress, self._progress.add_task(label, total=total, completed=completed, loss=math.nan))

    def print(self, message: str) -> None:
        self._progress.console.print(message)

    @contextlib.contextmanager
    def showing(self, renderable: Any) -> Iterator[None]:
        bars = self._progress.get_renderables
        self._progress.get_renderables = lambda: iter([renderable, *bars()])  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self._progress.get_renderables
            self._progress.refresh()
