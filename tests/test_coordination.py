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
    from hpogrow.coordination import coordinator_for
    coordinator = coordinator_for(sys.argv[1], "/tmp")
    coordinator.register()
    assert coordinator.try_lock("target study")
    print(coordinator.driver, flush=True)
    time.sleep(600)
""")


def _holder(url: str) -> tuple[subprocess.Popen, str]:
    """Another driver: registered, holding a named lock, until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/study.db"


@pytest.fixture
def holder(storage_url):
    process, driver = _holder(storage_url)
    yield process, driver
    process.kill()
    process.wait()


def test_a_killed_drivers_locks_are_free_and_it_is_seen_dead(tmp_path, storage_url, holder):
    process, driver = holder
    coordinator = coordinator_for(storage_url, tmp_path)
    assert coordinator.alive(driver) and not coordinator.try_lock("target study")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not coordinator.alive(driver)
    assert coordinator.try_lock("target study")  # SIGKILL left nothing locked
    coordinator.close()


def test_lock_waits_for_the_holder(tmp_path, storage_url, holder):
    process, _ = holder
    coordinator = coordinator_for(storage_url, tmp_path)
    waited = []
    killer = subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1.5); os.kill({process.pid}, 9)"])
    started = time.monotonic()
    with coordinator.lock("target study", on_wait=lambda: waited.append(True)):
        assert time.monotonic() - started >= 1.0 and waited == [True]
    killer.wait()
    coordinator.close()


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
