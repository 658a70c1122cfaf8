"""The fault-injection hook (hpogrow/_crash.py): it kills only at the point HPOGROW_CRASH_AT names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from hpogrow import _crash

_SCRIPT = ("from hpogrow._crash import crash_point\n"
           "for name in 'abab':\n    crash_point(name)\n    print(name, flush=True)\n")


@pytest.fixture
def kills(monkeypatch) -> list[int]:
    """The signals crash_point sends to this process, recorded instead of sent."""
    sent: list[int] = []
    monkeypatch.setattr(_crash, "_reached", Counter())
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(sig) if pid == os.getpid() else None)
    return sent


@pytest.mark.parametrize("wanted", [None, "", "c", "ab"])
def test_no_crash_unless_the_point_is_named(monkeypatch, kills, wanted):
    if wanted is None:
        monkeypatch.delenv("HPOGROW_CRASH_AT", raising=False)
    else:
        monkeypatch.setenv("HPOGROW_CRASH_AT", wanted)
    for name in "abab":
        _crash.crash_point(name)
    assert kills == []


def test_the_named_point_kills_on_the_nth_time_only(monkeypatch, kills):
    monkeypatch.setenv("HPOGROW_CRASH_AT", "b@2")
    _crash.crash_point("b")
    _crash.crash_point("a")
    assert kills == []
    _crash.crash_point("b")
    assert kills == [signal.SIGKILL]
    _crash.crash_point("b")  # the third time: not again
    assert kills == [signal.SIGKILL]


def test_a_real_process_dies_by_sigkill_at_the_point():
    env = {**os.environ, "HPOGROW_CRASH_AT": "b"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["a"]
