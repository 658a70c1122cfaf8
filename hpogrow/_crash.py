"""A fault-injection hook for the crash-safety tests: ``HPOGROW_CRASH_AT=NAME`` kills this
process with SIGKILL the first time it reaches the point ``NAME`` (``NAME@N``: the N-th time);
nothing happens otherwise. With ``HPOGROW_CRASH_MARKER=FILE`` too, only one process dies, the first
to get there (it creates ``FILE``): a Ray worker killed once, whose retry runs on."""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Die here, as ``kill -9`` would, if the environment names this point."""
    wanted = os.environ.get("HPOGROW_CRASH_AT")
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point == name:
        _reached[name] += 1
        if _reached[name] == int(count or 1) and _first_to_die(os.environ.get("HPOGROW_CRASH_MARKER")):
            os.kill(os.getpid(), signal.SIGKILL)


def _first_to_die(marker: str | None) -> bool:
    if marker is None:
        return True
    try:
        with open(marker, "x"):
            return True
    except FileExistsError:
        return False
