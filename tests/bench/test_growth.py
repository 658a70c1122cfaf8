"""Smoke tests: the benchmarks behind the clone default and the smoothing width run at their
smallest size, record their result, and show what the defaults rest on."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str, monkeypatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import the shared bench/_harness.py
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module: ModuleType, name: str, tmp_path: Path) -> dict:
    record = module.main(["--quick", "--results", str(tmp_path / "RESULTS.md")])
    assert f"## {name} — " in (tmp_path / "RESULTS.md").read_text()
    assert json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])["benchmark"] == name
    return record


def test_clone_symmetry_quick(tmp_path, monkeypatch):
    torch.set_num_threads(1)  # tiny models; the autouse fixture restores 2 for the next test
    record = _run(_load("clone_symmetry", monkeypatch), "clone_symmetry", tmp_path)
    by_scale = {(row["task"], row["scale"]): row for row in record["rows"]}
    assert by_scale["mlp", 0.0]["apart_end"] == 0 and by_scale["mlp", 0.1]["apart_end"] > 0
    assert abs(by_scale["lm", 0.0]["relative_loss_0"]) < 1e-6  # the exact copy preserves the LM's function
    assert abs(by_scale["lm", 1.0]["relative_loss_0"]) > abs(by_scale["lm", 0.01]["relative_loss_0"])


def test_speedup_smoothing_quick(tmp_path, monkeypatch):
    record = _run(_load("speedup_smoothing", monkeypatch), "speedup_smoothing", tmp_path)
    assert len(record["rows"]) == 18 and all("local-linear σ=1" in row for row in record["rows"])


def test_speedup_bases_quick(tmp_path, monkeypatch):
    record = _run(_load("speedup_bases", monkeypatch), "speedup_bases", tmp_path)
    rows = {(row["bases"], row["pairs"], row["base_share"]): row for row in record["rows"]}
    assert len(rows) == 21
    # one pair per base: the interval over bases is the one over pairs; a bootstrap over 2 bases has 4 resamples
    assert rows[2, 2, 1.0]["bases t"] == rows[2, 2, 1.0]["pairs t"] and rows[2, 2, 1.0]["cluster bootstrap"]["coverage"] < 0.7
