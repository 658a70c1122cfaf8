"""Joining Ray (hpogrow/search/executors/ray_join.py): an address where nothing answers fails within
seconds with one line, before anything is written, instead of Ray retrying for minutes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpogrow.errors import UsageError
from hpogrow.search.executors.ray_join import _endpoint, join_ray, probe_address

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_search_with_an_unreachable_ray_address_fails_within_30_seconds_in_one_line(tmp_path):
    address, workdir = f"127.0.0.1:{_closed_port()}", tmp_path / "work"
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    started = time.monotonic()
    try:
        run = subprocess.run([sys.executable, "-m", "hpogrow", "search", "--task", "mlp", "--base-width", "16",
                              "--depth", "1", "--trials", "2", "--tokens-per-param", "8", "--evaluations", "2",
                              "--device", "cpu", "--executor", "ray",
                              "--ray-address", address, "--workdir", str(workdir)],
                             cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("hpogrow search --ray-address at a closed port still waited 90 s")
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"{elapsed:.0f} s"
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"--ray-address {address}: nothing answers at {address} (connection refused)" in lines[0]
    assert "ray start --head" in lines[0]
    assert not workdir.exists()  # nothing half-written: no study, no storage


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_join_ray_refuses_a_closed_port_at_once(address):
    address = address.format(port=_closed_port())
    started = time.monotonic()
    with pytest.raises(UsageError, match=f"--ray-address {address}: nothing answers at .*connection refused"):
        join_ray(address)
    assert time.monotonic() - started < 30


def test_ray_client_without_a_port_is_probed_at_10001(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert _endpoint("ray://head.example") == (["head.example"], 10001)
    assert _endpoint("ray://[::1]:7000") == (["::1"], 7000)
    assert _endpoint("anyscale://somewhere") is None  # another protocol: left to Ray
    assert _endpoint("not-an-address") is None  # malformed: ray.init says so at once


def test_auto_probes_what_ray_address_names(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head.example:10002")
    assert _endpoint("auto") == (["head.example"], 10002)
    monkeypatch.setenv("RAY_ADDRESS", "head.example:6380")
    assert _endpoint("auto") == (["head.example"], 6380)


def test_a_listening_port_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe_address(f"127.0.0.1:{server.getsockname()[1]}")  # Ray's own host for 127.0.0.1 may differ: both tried
        probe_address(f"ray://127.0.0.1:{server.getsockname()[1]}")


def test_making_a_ray_executor_for_a_closed_port_is_the_usage_error():
    from hpogrow.search.executors.ray import RayExecutor

    with pytest.raises(UsageError, match="nothing answers"):
        RayExecutor(address=f"127.0.0.1:{_closed_port()}")
