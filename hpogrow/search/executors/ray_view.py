"""A live table of Ray Tune trials, shown above the progress bars (:meth:`hpogrow.progress.Display.showing`).

It replaces Ray's own console tables: one row per Optuna trial with its state (Ray's PENDING,
RUNNING or PAUSED while it lives, Optuna's COMPLETE, PRUNED or FAIL once told), the rung it
reached, tokens seen and its best validation loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.table import Table

_STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "PAUSED": "magenta"}


@dataclass
class _Row:
    state: str = "PENDING"
    tokens: int = 0
    best_loss: float = math.nan


class TrialBoard:
    """Rows of trials, updated by the bridge and the Tune callback, rendered by rich.

    Args:
        rungs: token milestones of the rung plan (the last is the full budget).
        title: shown above the table.
        rows_shown: the most recent rows kept on screen (all live trials are always shown).
    """

    def __init__(self, rungs: list[int], title: str, rows_shown: int = 12) -> None:
        self.rungs, self.title, self.rows_shown = rungs, title, rows_shown
        self._rows: dict[int, _Row] = {}

    def update(self, number: int, *, state: str | None = None, tokens: int | None = None,
               loss: float | None = None) -> None:
        row = self._rows.setdefault(number, _Row())
        if state is not None:
            row.state = state
        if tokens is not None:
            row.tokens = max(row.tokens, tokens)
        if loss is not None and math.isfinite(loss) and not loss >= row.best_loss:
            row.best_loss = loss

    def rung(self, tokens: int) -> int:
        """Rungs passed at ``tokens`` (0 before the first)."""
        return sum(tokens >= milestone for milestone in self.rungs)

    def __rich__(self) -> Table:
        finished = ("COMPLETE", "PRUNED", "FAIL")
        best = min((r.best_loss for r in self._rows.values() if r.state == "COMPLETE"), default=math.nan)
        table = Table(title=f"{self.title} — best full-budget loss {best:.4f}", title_justify="left")
        for column in ("trial", "state", "rung", "tokens", "best loss"):
            table.add_column(column, justify="right")
        numbers = sorted(self._rows)
        live = [n for n in numbers if self._rows[n].state not in finished]
        done = [n for n in numbers if self._rows[n].state in finished][-max(0, self.rows_shown - len(live)):]
        for number in sorted(set(live) | set(done)):
            row = self._rows[number]
            style = _STYLES.get(row.state, "")
            table.add_row(str(number), f"[{style}]{row.state}[/{style}]" if style else row.state,
                          f"{self.rung(row.tokens)}/{len(self.rungs)}", f"{row.tokens:,}",
                          "—" if math.isnan(row.best_loss) else f"{row.best_loss:.4f}")
        return table
