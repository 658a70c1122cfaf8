"""Smoke test: the growth-operator benchmark runs at its smallest size and records its result."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def test_grow_operators_benchmark_quick(tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[2] / "bench" / "grow_operators.py"
    monkeypatch.syspath_prepend(str(path.parent))  # it imports the shared bench/_harness.py
    spec = importlib.util.spec_from_file_location("grow_operators", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = tmp_path / "RESULTS.md"
    record = module.main(["--quick", "--results", str(results)])
    assert {row["operator"] for row in record["rows"]} == set(module.OPERATORS)
    assert all(row["initial"] > row["final"] for row in record["rows"])
    assert [cell["operator"] for cell in record["operators"]] == list(module.OPERATORS)
    for cell in record["operators"]:  # the same g for every operator, seeds aggregated with an interval
        assert abs(cell["g"] / module.GROWTH_FACTOR - 1) <= 0.10
        assert cell["seeds"] == 2 and 0 <= cell["seeds_reached"] <= 2
        low, high = cell["speedup_tokens_ci"]
        assert low <= cell["speedup_tokens"] <= high
    assert "grow_operators" in results.read_text()
    assert json.loads((tmp_path / "results.jsonl").read_text())["benchmark"] == "grow_operators"
