"""What long work shows while it runs, as an interface: the search, its executors and the checks
open bars and print lines through a :class:`Display`; the training loop knows none of it (it
calls plain callbacks). The rich implementation is the command line's
(:class:`hpogrow.cli.progress.RichDisplay`); the library's default, :data:`QUIET`, shows nothing.

Example (Python API, with the command line's bars)::

    from hpogrow.cli.progress import RichDisplay
    with RichDisplay() as display:
        run_pipeline(task, config, display=display)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

TokensCallback = Callable[[int, "float | None"], None]
"""Called by a training run with the tokens it has seen and, at an evaluation, its held-out loss
(``None`` between evaluations)."""


class Bar(Protocol):
    """One bar: completed out of a total (tokens of a run, or trials of a search), with a loss."""

    def update(self, completed: float, loss: float | None = None) -> None: ...

    def advance(self, amount: float = 1, loss: float | None = None) -> None: ...

    def close(self) -> None: ...


class Display(Protocol):
    """Where bars and messages go."""

    def bar(self, label: str, total: float, completed: float = 0) -> Bar: ...

    def print(self, message: str) -> None:
        """One line above the bars (rich markup allowed)."""

    def showing(self, renderable: Any) -> contextlib.AbstractContextManager[None]:
        """Show a live renderable (e.g. the Ray trial table) above the bars while the block runs."""


class _QuietBar:
    def update(self, completed: float, loss: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1, loss: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class _Quiet:
    """Shows nothing."""

    def bar(self, label: str, total: float, completed: float = 0) -> Bar:
        return _QuietBar()

    def print(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def showing(self, renderable: Any) -> Iterator[None]:
        yield


QUIET: Display = _Quiet()
"""The library's default display: nothing is shown."""


@contextlib.contextmanager
def run_bar(display: Display, label: str, tokens: int) -> Iterator[TokensCallback]:
    """A bar for one training run while the block runs: yields the run's ``on_tokens`` callback."""
    bar = display.bar(label, tokens)
    try:
        yield bar.update
    finally:
        bar.close()
