"""Smoke test of ``bench/data_parallel.py``: 1 and 2 Ray Train DDP workers at the smallest size."""

from __future__ import annotations

import pytest

from tests.bench.test_bench import run_benchmark  # noqa: F401 (the fixture)


@pytest.mark.slow
def test_data_parallel_quick(run_benchmark):  # noqa: F811
    record = run_benchmark("data_parallel")
    (row,) = record["rows"]
    assert row["one_worker"] > 0 and row["two_workers"] > 0 and row["speedup"] > 0
    assert row["wall_one"] > 0 and row["wall_two"] > 0 and record["versions"]["ray"]
