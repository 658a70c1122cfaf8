"""The rich progress display shared by every long-running command."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def make_progress(console: Console | None = None) -> Progress:
    """Bars show completed/total (tokens for runs, trials for a search) and the latest loss."""
    return Progress(
        TextColumn("[bold]{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.completed:>11,.0f}/{task.total:,.0f}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        refresh_per_second=2,  # rich's default 10 redraws/s take CPU from training (bench/loop_overhead.py)
    )
