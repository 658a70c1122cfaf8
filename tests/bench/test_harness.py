"""What the benchmarks share (bench/_harness.py, bench/_speedups.py): records that read the same on
every machine, and speedups in the package's one FLOP convention."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hpogrow.parametrize import build_model, count_parameters
from hpogrow.tasks import LanguageTask
from hpogrow.throughput import training_flops, training_flops_per_token

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _harness
    import _speedups

    yield SimpleNamespace(harness=_harness, speedups=_speedups)
    for name in ("_harness", "_speedups"):
        sys.modules.pop(name, None)


def test_records_store_paths_inside_the_repository_relative_to_it(bench, tmp_path):
    root = bench.harness.REPOSITORY
    record = {"args": {"results": str(root / "bench" / "RESULTS.md"), "workdir": "/tmp/elsewhere"},
              "rows": [{"command": f"{root}/.venv/bin/python -m hpogrow search --workdir {root}/work"}],
              "plots": [root / "bench" / "plots" / "g.png"], "seeds": 3, "other": f"/x{root}/kept"}
    assert bench.harness.repository_relative(record) == {
        "args": {"results": "bench/RESULTS.md", "workdir": "/tmp/elsewhere"},
        "rows": [{"command": ".venv/bin/python -m hpogrow search --workdir work"}],
        "plots": ["bench/plots/g.png"], "seeds": 3, "other": f"/x{root}/kept"}

    args = argparse.Namespace(quick=True, results=str(tmp_path / "RESULTS.md"))
    bench.harness.append_result(args, {"benchmark": "b", "date": "d", "commit": "c", "command": "python bench/b.py",
                                       "machine": {"arch": "x", "cpu": "y", "cores": 1, "torch_threads": 1, "gpu": None},
                                       "versions": {}, "args": {"results": str(root / "bench" / "RESULTS.md")}}, [])
    assert json.loads((tmp_path / "results.jsonl").read_text())["args"]["results"] == "bench/RESULTS.md"


def test_committed_results_hold_no_absolute_paths_of_a_checkout():
    text = (BENCH / "results.jsonl").read_text()
    assert "/work/main/" not in text and "/tmp/wt/" not in text


def test_bench_speedups_count_flops_as_6nd_like_the_package(bench, monkeypatch):
    task = LanguageTask(depth=1, head_size=8, seq_len=16)
    base, target = build_model(task, 16, 16, seed=0), build_model(task, 32, 16, seed=0)
    assert training_flops_per_token(target) != training_flops(count_parameters(target).compute, 1)  # attention
    seen = {}
    monkeypatch.setattr(bench.speedups, "seed_speedup", lambda warm, scratch, **kwargs: seen.update(kwargs))
    run = SimpleNamespace(evaluations=[])
    bench.speedups.pair_speedup(run, run, target=target, base=base, base_tokens=1000, seed=0)
    assert seen["flops_per_token"] == 6 * count_parameters(target).compute
    assert seen["base_flops"] == 6 * count_parameters(base).compute * 1000 and seen["base_tokens"] == 1000
