"""Locks and driver liveness shared by the drivers of one storage, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hpogrow.coordination import FileCoordinator, coordinator_for, driver_id

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hpogrow.coordination import FileCoordinator
    coordinator = FileCoordinator(Path(sys.argv[1]))
    coordinator.register()
    assert coordinator.try_lock("target study")
    print(coordinator.driver, flush=True)
    time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
    """Another driver: registered, holding a named lock, until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "locks")], stdout=subprocess.PIPE, text=True)
    driver = process.stdout.readline().strip()
    yield process, driver
    process.kill()
    process.wait()


def test_a_killed_drivers_locks_are_free_and_it_is_seen_dead(tmp_path, holder):
    process, driver = holder
    coordinator = FileCoordinator(tmp_path / "locks")
    assert coordinator.alive(driver) and not coordinator.try_lock("target study")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not coordinator.alive(driver)
    assert coordinator.try_lock("target study")  # SIGKILL left nothing locked
    coordinator.close()


def test_lock_waits_for_the_holder(tmp_path, holder):
    process, _ = holder
    coordinator = FileCoordinator(tmp_path / "locks")
    waited = []
    killer = subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1.5); os.kill({process.pid}, 9)"])
    started = time.monotonic()
    with coordinator.lock("target study", on_wait=lambda: waited.append(True)):
        assert time.monotonic() - started >= 1.0 and waited == [True]
    killer.wait()


def test_this_driver_is_alive_and_unregistered_ones_are_judged_by_their_process(tmp_path):
    coordinator = FileCoordinator(tmp_path / "locks")
    coordinator.register()
    assert coordinator.alive(driver_id())
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = driver_id().split(":")[0]
    assert not coordinator.alive(f"{host}:{finished.stdout.strip()}")
    assert coordinator.alive(f"another-host:{finished.stdout.strip()}")  # cannot tell: never taken from it


def test_coordinators_live_beside_the_storage(tmp_path):
    assert coordinator_for(f"sqlite:///{tmp_path}/a.db", tmp_path).folder == tmp_path / "a.db.locks"
    assert coordinator_for(f"journal:{tmp_path}/j.log", tmp_path).folder == tmp_path / "j.log.locks"
    assert coordinator_for("mysql://u@h/db", tmp_path).folder == tmp_path / "locks"
