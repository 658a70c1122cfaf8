"""Smoke tests: every benchmark runs at its smallest size (``--quick``) into a temporary results
file, so that none of them rots. The committed ``bench/RESULTS.md`` is never touched."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def run_benchmark(tmp_path, monkeypatch):
    """``run_benchmark(name, *argv)`` runs ``bench/{name}.py --quick`` and returns its record."""
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their shared _harness

    def run(name: str, *argv: str) -> dict:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
        spec.loader.exec_module(module)
        results = tmp_path / "RESULTS.md"
        record = module.main(["--quick", "--results", str(results), *argv])
        assert f"## {name} — " in results.read_text()
        lines = (tmp_path / "results.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["benchmark"] == name
        assert record["command"].startswith(f"python bench/{name}.py --quick") and "--results" not in record["command"]
        assert {"cpu", "cores", "gpu"} <= set(record["machine"]) and record["commit"] and record["date"]
        return record

    return run


def test_loop_overhead_quick(run_benchmark):
    record = run_benchmark("loop_overhead", "--precision", "bf16")  # the GPU path's autocast, on CPU
    (row,) = record["rows"]
    assert row["bare"] > 0 and row["hpogrow"] > 0 and row["ratio"] > 0
    assert row["mfu"] is None  # CPU: no MFU


def test_loop_overhead_bare_loop_learns_like_hpogrow(run_benchmark):
    """The bare side is a fair baseline: same model, data and optimizer give the same losses."""
    import torch

    import loop_overhead  # noqa: F401  (bench/ is on the path through the fixture)
    from hpogrow.parametrize import build_model
    from hpogrow.tasks import LanguageTask
    from hpogrow.train import TrainConfig, train

    task = LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=256)
    config = TrainConfig(learning_rate=1e-2, batch_size=4, tokens=4 * 16 * 6, evaluations=2, device="cpu")
    ours = [e.val_loss for e in train(build_model(task, 16, 16, seed=0), task, config).evaluations]
    bare = loop_overhead.bare_loop(build_model(task, 16, 16, seed=0), task, config, torch.device("cpu"))
    assert bare == pytest.approx(ours, rel=1e-5)


def test_cost_growth_quick(run_benchmark):
    record = run_benchmark("cost_growth")
    widths = record["width"]
    assert [row["width"] for row in widths] == [32, 64] and widths[0]["time_ratio"] == 1.0
    assert widths[1]["six_n_ratio"] > 2  # non-embedding parameters grow about as width²
    assert all(row["peak_mib"] > 0 and row["seconds_per_token"] > 0 for row in widths + record["context"])


def test_startup_quick(run_benchmark):
    record = run_benchmark("startup")
    help_row = next(row for row in record["rows"] if row["command"] == "hpogrow --help")
    assert help_row["imports"] == []  # no torch, Ray, Optuna, NumPy, mup


def test_data_memory_quick(run_benchmark):
    record = run_benchmark("data_memory")
    small, large = record["rows"]
    assert large["tokens"] == 100 * small["tokens"] and small["peak_mib"] > 0
    assert record["within"] == (abs(large["over_smallest_mib"]) < record["limit_mib"])


def test_synthetic_language_quick(run_benchmark):
    record = run_benchmark("synthetic_language")
    assert all(row["tokens_per_cpu_second"] > 0 for row in record["generation"])
    entropies = record["entropies"]
    assert entropies["floor"] < entropies["bigram"] < entropies["unigram"]
    assert [row["width"] for row in record["rows"]] == [32, 64]
    assert all(row["final_mean"] > entropies["floor"] for row in record["rows"])  # nothing beats the floor


@pytest.mark.slow
def test_asha_vs_full_quick(run_benchmark):
    """Both searches train a configuration on the same budget (same losses), ASHA stops trials only
    at the plan's rungs, and it never spends less than the floor the rung schedule allows."""
    record = run_benchmark("asha_vs_full")
    assert [row["reduction_factor"] for row in record["rows"]] == [2, 3]
    for row in record["rows"]:
        assert row["full_tokens"] == 4 * record["budget"] and row["rungs"][-1] == record["budget"]
        assert row["floor"] - 1e-12 <= row["fraction"] <= 1
        assert row["max_loss_difference"] < 1e-6
        assert all(trial["tokens"] in row["rungs"] for trial in row["asha_trials"] if trial["state"] != "FAIL")
        assert row["hit"] == (row["asha_winner"] == row["full_winner"] or row["gap"] <= 0.01)


@pytest.mark.parametrize("reduction_factor", [2, 3])
def test_asha_floor_is_the_least_ray_asha_spends(monkeypatch, reduction_factor):
    """The floor printed beside the measurement is what Ray's own ASHA bracket spends at best
    (trials arriving best first) and never undercuts, whatever the order of arrival."""
    import random

    monkeypatch.syspath_prepend(str(BENCH))
    from asha_vs_full import expected_fraction, floor_fraction, ray_asha_fraction

    from hpogrow.search.schedule import rung_schedule

    trials = 12
    schedule = rung_schedule(reduction_factor ** 3 * 4096, 4096, "asha", reduction_factor, 3)
    floor = floor_fraction(schedule, trials)
    best_first = [[float(number)] * len(schedule.rungs) for number in range(trials)]
    assert ray_asha_fraction(schedule, reduction_factor, best_first) == pytest.approx(floor)
    draw = random.Random(0)
    spends = [ray_asha_fraction(schedule, reduction_factor, [[draw.random() for _ in schedule.rungs] for _ in range(trials)])
              for _ in range(200)]
    assert min(spends) >= floor - 1e-12 and max(spends) > floor
    assert floor < expected_fraction(schedule, trials, reduction_factor) < 1


def test_asha_bench_budget_is_one_every_schedule_lands_on(monkeypatch):
    """The full search and ASHA at every reduction factor train a trial on the same tokens."""
    monkeypatch.syspath_prepend(str(BENCH))
    from asha_vs_full import common_budget

    from hpogrow.search.schedule import rung_schedule

    budget = common_budget(20.0, 43_170, 4096, [2, 3], 3)
    assert abs(budget - 20.0 * 43_170) <= 216 * 4096 / 2
    assert rung_schedule(budget, 4096, "none").budget == budget
    for reduction_factor in (2, 3):
        assert rung_schedule(budget, 4096, "asha", reduction_factor, 3).budget == budget


@pytest.mark.slow
def test_halving_real_quick_matches_its_pool(run_benchmark, tmp_path, monkeypatch):
    """A real search over 4 configurations of a pool trained here: its recorded losses are the
    pool's to the bit (same seed and tokens), and it spends exactly what the design says."""
    monkeypatch.syspath_prepend(str(BENCH))
    import halving_pool

    pool = tmp_path / "pool.json"
    halving_pool.main(["--base-width", "64", "--lrs", "2", "--processes", "1", "--out", str(pool)])
    record = run_benchmark("halving_real", "--pool", str(pool))
    (row,) = record["rows"]
    assert row["design"]["name"] == "sha" and row["complete"] == 1 and row["pruned"] == 3
    assert row["max_loss_difference"] == 0.0
    assert row["fraction"] == pytest.approx(row["expected"])


@pytest.mark.slow
def test_default_run_quick(run_benchmark):
    record = run_benchmark("default_run")
    phases = {phase["phase"]: phase for phase in record["phases"]}
    assert {"start-up and plan", "base search", "warmstart 0", "scratch 0"} <= set(phases)
    assert 0 < phases["base search"]["seconds"] < record["seconds"]
    assert 0 < phases["warmstart 0"]["training"] <= phases["warmstart 0"]["seconds"] + 1


def test_drivers_quick(run_benchmark):
    record = run_benchmark("drivers")
    (row,) = record["rows"]
    assert row["case"] == "journal:local" and row["exit_codes"] == [0, 0] and row["error_lines"] == 0
    assert row["base_trials"] == 3 and row["duplicated_configurations"] == 0 and row["distinct_reports"] == 1
    assert row["target_trials"] == {"scratch complete": 1, "warmstart complete": 1}


def test_growth_factor_sweep_quick(run_benchmark, tmp_path):
    record = run_benchmark("growth_factor_sweep")
    cells = {(cell["task"], cell["budget"], cell["factor"]): cell for cell in record["cells"]}
    assert set(cells) == {(task, budget, factor) for task in ("lm", "mlp") for budget, factor in
                          ((1.0, 2.0), (1.0, 4.0), (2.0, 2.0))}  # the g sweep at 1 token/param, the trend at g = 2
    for cell in cells.values():
        assert cell["seeds"] == 2 and 0 <= cell["seeds_reached"] <= 2  # censored seeds are counted, not dropped
        for measure in ("tokens", "flops", "tokens_with_base", "flops_with_base"):
            low, high = cell[f"speedup_{measure}_ci"]
            assert low <= cell[f"speedup_{measure}"] <= high
        assert cell["speedup_tokens"] == pytest.approx(cell["speedup_flops"])  # same model, same tokens
        assert cell["speedup_flops_with_base"] < cell["speedup_flops"]  # the base costs something
        assert cell["eval_se"] > 0
    assert cells["lm", 1.0, 4.0]["g"] > cells["lm", 1.0, 2.0]["g"] > 1
    assert {(bound["task"], bound["budget"]) for bound in record["upper_bounds"]} == {("lm", 1.0), ("mlp", 1.0)}
    for name in ("growth_factor_sweep_g.png", "growth_factor_sweep_budget.png"):  # beside the results file
        image = (tmp_path / "plots" / name).read_bytes()
        assert image.startswith(b"\x89PNG") and len(image) < 100_000


def test_growth_factor_sweep_upper_bound(monkeypatch):
    """The upper bound is the smallest g above every g that pays whose interval lies below 1; a small
    g below 1 (the base's cost is largest there) is not the bound."""
    monkeypatch.syspath_prepend(str(BENCH))
    import growth_factor_sweep

    intervals = {1.5: [0.7, 0.9], 2.0: [1.1, 1.5], 3.0: [0.9, 1.2], 4.0: [0.6, 0.95], 8.0: [0.3, 0.5]}
    sweep = [{"task": "lm", "budget": 2.0, "factor": factor, "g": factor * 1.01, "speedup_flops_with_base_ci": interval}
             for factor, interval in intervals.items()]
    (bound,) = growth_factor_sweep._upper_bounds(sweep)
    assert bound["verdicts"] == {1.5: "scratch", 2.0: "pays", 3.0: "open", 4.0: "scratch", 8.0: "scratch"}
    assert bound["pays_up_to"] == pytest.approx(2.02) and bound["upper_bound"] == pytest.approx(4.04)
    sweep[1]["speedup_flops_with_base_ci"] = [0.95, 1.3]  # nothing pays: the first g below 1 is the bound
    assert growth_factor_sweep._upper_bounds(sweep)[0]["upper_bound"] == pytest.approx(1.515)


@pytest.mark.slow
def test_advise_holdout_quick(run_benchmark, tmp_path):
    record = run_benchmark("advise_holdout", "--workdir", str(tmp_path / "advise"), "--holdout-tokens-per-param", "6")
    assert {"recommended_growth_factor", "max_growth_factor", "fit", "holdout_by_width"} <= set(record["advice"])
    assert [held["width"] for held in record["advice"]["holdout_by_width"]] == [8, 12, 16]
    assert [row["g"] for row in record["holdout_budget"]] == [2.0, 3.0, 4.0]
    for row in record["holdout_budget"]:
        assert row["seeds"] == 2 and row["measured"] > 0 and row["predicted"] > 0


def test_target_resume_quick(run_benchmark):
    record = run_benchmark("target_resume")
    assert len(record["rows"]) == 1
    for row in record["rows"]:
        assert row["final_tokens"] == record["tokens"]
        assert row["resumed_at"] <= row["tokens_at_kill"] or row["tokens_at_kill"] == 0
        assert row["recomputed"] <= record["interval"] + 64 * 8 * 10  # the child writes its tokens every ≤10 steps
    assert record["checkpoint_cost_ratio"] > 0


def test_halving_replay_quick(run_benchmark, tmp_path):
    """On a pool where every rung ranks the configurations as the budget does, every halving design
    finds the full search's winner and spends exactly ``Halving.spend`` (and Ray's ASHA finds it
    too); where the rungs below the budget rank them in reverse, no halving design always does."""
    import random

    from halving_replay import FIRST_RUNGS
    from hpogrow.search.schedule import Schedule
    from hpogrow.search.halving import Halving

    asked, step = 4096, 16
    designs = {f"{rf}^{k}": Halving(rf, k, 1.0).schedule(asked, step) for rf, k in ((2, 3), (3, 3), (4, 2), (4, 1), (3, 2))}
    moved = [Halving(3, 2, share).schedule(asked, step) for share in FIRST_RUNGS]  # the first-rung family of 3^2
    tokens = sorted({rung for schedule in [*designs.values(), *moved] for rung in schedule.rungs})
    smallest_budget = min(schedule.budget for schedule in designs.values())
    qualities = random.Random(0).sample(range(30), 30)  # the rank is not the configuration's number

    def write_pool(name: str, reversed_below_budget: bool) -> str:
        def loss(quality: int, at: int) -> float:
            rank = 29 - quality if reversed_below_budget and at < smallest_budget else quality
            return 3 + 0.01 * rank + 100 / at

        runs = [{"learning_rate": 1e-3, "batch_size": 16, "diverged": None, "curve": {str(t): loss(q, t) for t in tokens},
                 "units": {str(s.budget): [loss(q, s.budget) + 0.001 * unit for unit in range(8)] for s in designs.values()}}
                for q in qualities]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"base_width": 8, "asked_tokens": asked, "step_tokens": step, "runs": runs,
                                    "designs": {n: {"budget": s.budget, "rungs": list(s.rungs)} for n, s in designs.items()}}))
        return str(path)

    record = run_benchmark("halving_replay", "--pool", write_pool("ranked", False), "--pool", write_pool("reversed", True))
    ranked, reversed_ = record["pools"]
    assert ranked["sizes"] == [8, 16, 27]
    assert {row["design"] for row in ranked["rows"]} >= {f"3^2 @B/{s.budget / s.rungs[0]:.3g}" for s in moved}
    for row in ranked["rows"]:
        assert row["hit_rate"] == row["exact_rate"] == 1.0 and row["no_winner"] == 0
        if row["scheduler"] == "sha":
            design = Halving(row["reduction_factor"], row["rungs_below"], row["first_rung"])
            spend = design.spend(row["n"], Schedule(row["budget"], tuple(row["rungs"])))
            assert row["fraction_min"] == pytest.approx(spend) and row["fraction_max"] == pytest.approx(spend)
        else:
            assert row["design"] in ("2^3", "3^3") and 0 < row["fraction_min"] <= row["fraction_max"] <= 1
    assert {(row["scheduler"], row["n"]) for row in ranked["rows"] if row["design"] == "4^2"} == {("sha", 8), ("sha", 16)}
    cheapest = min((row for row in ranked["rows"] if row["scheduler"] == "sha" and row["n"] == 16
                    and row["first_rung_steps"] >= 2), key=lambda row: row["spend"])
    assert ranked["choice"]["design"] == cheapest["design"]
    assert all(row["hit_rate"] < 1 for row in reversed_["rows"] if row["scheduler"] == "sha")


@pytest.mark.slow
def test_sampler_compare_quick(run_benchmark, tmp_path, monkeypatch):
    """Regret is the chosen (lowest COMPLETE) loss minus the grid's best at the plan's budget, the
    grid's best retrained by the bench matches the grid exactly, and configurations without a loss
    at the budget (diverged) drop out of the grid."""
    monkeypatch.syspath_prepend(str(BENCH))
    import sampler_compare

    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\nbatch_size: {choices: [16]}\n")
    trained = sampler_compare._curve(({"learning_rate": 3e-3, "batch_size": 16}, 32, 1.0, str(space)))
    pool = {"base_width": 32, "tokens_per_param": 1.0, "seed": 0, "runs": [
        {"learning_rate": 3e-3, "batch_size": 16, "curve": {str(k): v for k, v in trained.items()}},
        {"learning_rate": 1e-3, "batch_size": 16, "curve": {str(k): v + 1 for k, v in trained.items()}},
        {"learning_rate": 1e-2, "batch_size": 16, "curve": {"2048": 0.0}, "diverged": "loss nan"}]}
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    record = run_benchmark("sampler_compare", "--pool", str(tmp_path / "pool.json"), "--space", str(space))
    budget = record["budget"]
    assert record["grid_best"] == {"learning_rate": 3e-3, "batch_size": 16, "loss": trained[budget]}
    assert record["reproduction_max_abs"] == 0 and record["reproduction_points"] == len(trained)
    assert [(row["sampler"], row["seed"]) for row in record["rows"]] == [("tpe+div", 0), ("random", 0)]
    for row, search in zip(record["rows"], record["searches"]):
        assert len(search["trials"]) == 3
        losses = [t["loss"] for t in search["trials"] if t["state"] == "COMPLETE"]
        assert row["regret"] == pytest.approx(min(losses) - trained[budget])
        grid = [{"learning_rate": run["learning_rate"], "batch_size": 16, "loss": run["curve"][str(budget)]}
                for run in pool["runs"][:2]]
        assert row["grid_regret"] == pytest.approx(sampler_compare.grid_loss(grid, row["chosen"]) - trained[budget])
        assert row["within_noise"] == (row["regret"] <= sampler_compare.NOISE_BAND * trained[budget])


def test_sampler_compare_regret_counts_failures(monkeypatch):
    """A diverged trial is counted, never chosen; a search with no COMPLETE trial has infinite regret,
    and its sampler's interval is then infinite too."""
    monkeypatch.syspath_prepend(str(BENCH))
    import sampler_compare

    complete = {"state": "COMPLETE", "loss": 3.1, "diverged": False, "learning_rate": 1e-3, "batch_size": 16}
    diverged = {"state": "FAIL", "loss": None, "diverged": True, "learning_rate": 3e-2, "batch_size": 16}
    search = {"sampler": "x", "seed": 0, "seconds": 1.0, "trials": [complete, diverged]}
    grid = [{"learning_rate": 1e-4, "batch_size": 16, "loss": 3.4}, {"learning_rate": 1e-2, "batch_size": 16, "loss": 3.0}]
    row = sampler_compare.regret_row(search, grid)
    assert row["chosen"] == complete and row["regret"] == pytest.approx(0.1) and row["diverged"] == row["failed"] == 1
    assert row["grid_regret"] == pytest.approx(0.2)  # halfway in log lr between 3.4 and 3.0
    assert not row["within_noise"]
    lost = sampler_compare.regret_row({**search, "seed": 1, "trials": [diverged]}, grid)
    assert lost["chosen"] is None and lost["regret"] == lost["grid_regret"] == math.inf
    summary = sampler_compare.summarise([row, {**row, "seed": 2, "regret": 0.3}])
    assert summary["mean"] == pytest.approx(0.2) and summary["low"] < 0.2 < summary["high"]
    assert math.isinf(sampler_compare.summarise([row, lost])["high"])


def test_sampler_compare_grid_jitter(monkeypatch):
    """Jitter is the RMS of each near-optimal point against its neighbours' mean, over √1.5, per
    batch size (lines never mix) and only where the loss is within 2% of the best."""
    monkeypatch.syspath_prepend(str(BENCH))
    import sampler_compare

    line = [(1e-3, 3.0), (2e-3, 2.9), (4e-3, 3.0), (8e-3, 2.9), (16e-3, 3.0)]
    grid = [{"learning_rate": lr, "batch_size": 16, "loss": loss} for lr, loss in line]
    grid += [{"learning_rate": lr, "batch_size": 32, "loss": 9.0} for lr, _ in line]  # far from the best: left out
    jitter = sampler_compare.grid_jitter(grid, 2.9)
    assert jitter["points"] == 2 and jitter["sigma"] == pytest.approx(0.1 / math.sqrt(1.5))
    assert sampler_compare.grid_jitter(grid[:2], 2.9)["points"] == 0  # no interior point


def test_sampler_compare_welch_interval(monkeypatch):
    """The difference of means with Welch's interval: symmetric about it, narrower with less spread."""
    monkeypatch.syspath_prepend(str(BENCH))
    import sampler_compare

    difference, low, high = sampler_compare.welch_interval([1.0, 2.0, 3.0], [0.0, 0.5, 1.0])
    assert difference == pytest.approx(1.5) and high - difference == pytest.approx(difference - low)
    from hpogrow.stats import student_t_quantile

    freedom = (5 / 12) ** 2 / ((1 / 3) ** 2 / 2 + (1 / 12) ** 2 / 2)  # Welch: variances of the means 1/3 and 1/12
    assert high - difference == pytest.approx(student_t_quantile(0.975, freedom) * (5 / 12) ** 0.5)
    assert sampler_compare.welch_interval([1.0, 1.1], [0.0, 0.1])[2] < high
    assert sampler_compare.welch_interval([math.inf, 1.0], [0.0, 0.1])[1:] == (-math.inf, math.inf)


def test_horizon_quick(run_benchmark, tmp_path):
    """A synthetic pool (loss a parabola in log lr around lr* ∝ tokens^(−0.3)) is fitted back,
    then the tiny target runs are trained at each multiplier."""
    rates = [3e-4 * 100 ** (k / 15) for k in range(16)]
    tokens = [4096 * k for k in range(1, 33)]
    runs = [{"learning_rate": rate, "batch_size": batch, "diverged": None, "units": {},
             "curve": {str(t): 2 + 1 / math.log(t) + 0.2 * math.log(rate / (0.2 * t ** -0.3)) ** 2 for t in tokens}}
            for batch in (16, 32) for rate in rates]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"base_width": 16, "asked_tokens": tokens[-1], "runs": runs,
                                "designs": {"2^3": {"budget": tokens[-1], "rungs": [16384, 32768, 65536]}}}))
    record = run_benchmark("horizon", "--pool", str(pool))
    (fit,) = record["fits"]
    assert fit["fit"]["alpha"] == pytest.approx(0.3, abs=0.02)
    validation = record["validation"]
    assert validation["factors"]["w16"] == pytest.approx(
        (validation["target_tokens"] / validation["base_tokens"]) ** -fit["fit"]["alpha"])
    assert len(record["runs"]) == 2 * 4 * 2  # arms × multipliers × seeds
    assert sum(row["best"] for row in record["rows"]) == 2  # one winner per arm


@pytest.mark.slow
def test_speedup_ablation_quick(run_benchmark, tmp_path):
    """λ 0 grows exactly the scratch arm's model (the perturbation is scratch's μP init, same seed,
    same tokens): a gap of 0 and a speedup of 1 check that the arms of a seed are paired; WSD brings
    its own scratch arm; the rows written seed by seed aggregate back to the same cells."""
    rows = tmp_path / "rows.jsonl"
    record = run_benchmark("speedup_ablation", "--arms", "λ 0", "wsd", "--rows", str(rows))
    cells = {cell["arm"]: cell for cell in record["cells"]}
    assert set(cells) == {"λ 0", "wsd"} and all(cell["seeds"] == 2 for cell in cells.values())
    assert {row["against"] for row in record["rows"] if row["arm"] == "wsd"} == {"scratch wsd"}
    control = cells["λ 0"]
    assert control["final_gap"][0] == 0 and control["speedup_tokens"] == pytest.approx(1.0)
    assert control["speedup_flops_with_base"] < control["speedup_flops"]  # the base costs something
    for cell in cells.values():
        low, high = cell["speedup_flops_with_base_ci"]
        assert low <= cell["speedup_flops_with_base"] <= high
        assert isinstance(cell["meets_goal"], bool)
    again = run_benchmark("speedup_ablation", "--from-rows", str(rows))
    assert [cell["speedup_flops_with_base"] for cell in again["cells"]] == \
           [cell["speedup_flops_with_base"] for cell in record["cells"]]
