"""Which sampler should the base search use? Regret against a dense grid (issue 23, item 2).

Every sampler runs the same 2-D base search (learning rate log-uniform × batch size, the LM
search space) at the plan's budget, ``--trials`` trials per search, every trial trained to the
full budget (no pruning: only the sampler differs), training seed 0, once per sampler seed. A
search's **regret** is the held-out loss of its chosen configuration (its lowest COMPLETE loss)
minus the best loss of a dense grid at the same budget (``bench/halving_pool.py``'s pool: log-
spaced learning rates × batch sizes, trained with the same seed and data, its held-out loss at
every 4,096 tokens). A learning rate between grid points can beat the grid, so regret can be
below 0. Trials are recorded the way the local executor records them (a diverged run is FAIL with
``diverged``), so the divergence-aware samplers see what they see in a real search.

A search picks its lowest of ``--trials`` runs, each a draw of the loss's jitter along the learning
rate, so its measured regret is biased low; **on the grid** reads the grid's loss at the chosen
configuration instead (linear in log learning rate between grid points), which is not selected on
the search's own runs. Every sampler after the first is compared with the first (the default) by
the difference of mean regrets and its Welch interval.

One configuration of the grid (its best) is trained again by this bench's runner: its curve must
match the pool's (``max |Δ|``), or the regrets compare losses of different runs. Searches run
seed-major on ``--processes`` processes (one torch thread each), so machine load hits every
sampler alike; wall time per search includes the sampler's own time. ``--save`` keeps finished
searches, so that a rerun (or one with more samplers or seeds) trains only the missing ones. The
GP samplers need scipy (Optuna imports it for them; hpogrow does not depend on it).

    python bench/halving_pool.py --base-width 64 --out studies/pool-w64.json   # the grid, once
    python bench/sampler_compare.py --pool studies/pool-w64.json --save studies/sampler-searches.jsonl
    python bench/sampler_compare.py --quick --pool POOL --space SPACE --results /tmp/r.md   # see tests/bench
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import multiprocessing
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record

NOISE_BAND = 0.005
"""A search is within noise of the grid's best when its chosen loss is at most this fraction
above it (the pool keeps per-unit losses only at its candidate designs' budgets, not at every one)."""


def _samplers() -> dict[str, Callable[[int], Any]]:
    """Name → factory(seed) of every sampler the bench knows."""
    import optuna

    from hpogrow.search.sampler import DivergenceAwareSampler, make_sampler

    def gp(seed: int | None) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=seed)

    return {"tpe+div": make_sampler,  # hpogrow's default
            "gp": gp,
            "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
            "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
            "gp+div": lambda seed: DivergenceAwareSampler(seed, make_base=gp),
            "gp-4": lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=4)}


@functools.lru_cache(maxsize=None)
def _plan(base_width: int, tokens_per_param: float, space: str | None):
    """The search's plan (budget, evaluations, training seed 0), built once per process."""
    from hpogrow.search import SearchConfig
    from hpogrow.search.plan import make_plan
    from hpogrow.tasks import LanguageTask

    config = SearchConfig(base_width=base_width, tokens_per_param=tokens_per_param, space=space, executor="local",
                          scheduler="none", device="cpu", seed=0, workdir=tempfile.mkdtemp(prefix="hpogrow-sampler-"))
    return make_plan(LanguageTask(), config)


def _search(job: tuple) -> dict:
    """One search: ``trials`` trials asked of the sampler, each trained to the budget and recorded."""
    import optuna
    import torch

    from hpogrow.record.study import is_diverged
    from hpogrow.search.executors.local import run_in_process

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    name, seed, trials, base_width, tokens_per_param, space = job
    plan = _plan(base_width, tokens_per_param, space)
    folder = Path(tempfile.mkdtemp(prefix=f"hpogrow-sampler-{seed}-"))
    runner = replace(plan.base_trial(), checkpoint_dir=folder)
    study = optuna.create_study(direction="minimize", sampler=_samplers()[name](seed))
    start = time.perf_counter()
    try:
        for _ in range(trials):
            trial = study.ask(plan.space.distributions())
            run_in_process(study, trial, runner, prune=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - start
    rows = [{"number": t.number, **t.params, "state": t.state.name, "loss": t.value, "diverged": is_diverged(t)}
            for t in study.get_trials(deepcopy=False)]
    return {"sampler": name, "seed": seed, "budget": plan.base_tokens, "seconds": seconds, "trials": rows}


def _curve(job: tuple) -> dict[int, float]:
    """One configuration trained by the searches' runner: its held-out loss at every evaluation."""
    import torch

    torch.set_num_threads(1)
    params, base_width, tokens_per_param, space = job
    plan = _plan(base_width, tokens_per_param, space)
    folder = Path(tempfile.mkdtemp(prefix="hpogrow-sampler-check-"))
    try:
        outcome = replace(plan.base_trial(), checkpoint_dir=folder).run(params, 0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {e.tokens_seen: e.val_loss for e in outcome.evaluations}


def grid_at(pool: dict, budget: int) -> list[dict]:
    """The pool's configurations with a finite loss at ``budget`` (diverged ones drop out there).

    Example::

        >>> grid_at({"runs": [{"learning_rate": 0.01, "batch_size": 16, "curve": {"8": 3.0}}]}, 8)
        [{'learning_rate': 0.01, 'batch_size': 16, 'loss': 3.0}]
    """
    found = []
    for run in pool["runs"]:
        loss = run["curve"].get(str(budget))
        if loss is not None and math.isfinite(loss):
            found.append({"learning_rate": run["learning_rate"], "batch_size": run["batch_size"], "loss": loss})
    return found


def grid_loss(grid: list[dict], params: dict) -> float:
    """The grid's loss at ``params``: linear in log learning rate between the two grid points of
    its batch size around it (the nearest end outside them); NaN for a batch size not in the grid.

    Example::

        >>> grid = [{"learning_rate": 1e-3, "batch_size": 16, "loss": 3.0}, {"learning_rate": 1e-1, "batch_size": 16, "loss": 2.0}]
        >>> grid_loss(grid, {"learning_rate": 1e-2, "batch_size": 16})
        2.5
    """
    line = sorted((g for g in grid if g["batch_size"] == params["batch_size"]), key=lambda g: g["learning_rate"])
    if not line:
        return math.nan
    x = min(max(math.log(params["learning_rate"]), math.log(line[0]["learning_rate"])), math.log(line[-1]["learning_rate"]))
    for left, right in zip(line, line[1:]):
        low, high = math.log(left["learning_rate"]), math.log(right["learning_rate"])
        if low <= x <= high:
            return left["loss"] + (right["loss"] - left["loss"]) * (x - low) / (high - low)
    return line[0]["loss"]


def regret_row(search: dict, grid: list[dict]) -> dict:
    """A search's chosen configuration (its lowest COMPLETE loss) and its regret against the grid's
    best: measured (the chosen run's own loss, selected as the lowest of the search's draws of the
    jitter, so biased low) and on the grid (the grid's loss at the chosen configuration, not
    selected on the search's own noise); with its diverged and failed trials."""
    best_loss = min(g["loss"] for g in grid)
    complete = [t for t in search["trials"] if t["state"] == "COMPLETE"]
    chosen = min(complete, key=lambda t: t["loss"]) if complete else None
    regret = chosen["loss"] - best_loss if chosen else math.inf
    return {"sampler": search["sampler"], "seed": search["seed"], "seconds": search["seconds"],
            "chosen": chosen, "regret": regret, "relative_regret": regret / best_loss,
            "grid_regret": grid_loss(grid, chosen) - best_loss if chosen else math.inf,
            "within_noise": regret <= NOISE_BAND * best_loss,
            "diverged": sum(t["diverged"] for t in search["trials"]),
            "failed": sum(t["state"] == "FAIL" for t in search["trials"])}


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% t-interval (infinite with one value or any infinite one)."""
    from hpogrow.stats import student_t_quantile

    mean, half = statistics.fmean(values), math.inf
    if len(values) > 1 and all(math.isfinite(v) for v in values):
        half = student_t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def welch_interval(values: list[float], reference: list[float]) -> tuple[float, float, float]:
    """Difference of means ``values − reference`` and its 95% Welch t-interval (unpaired: sampler
    seed k of two samplers shares nothing but the number); infinite where either side is."""
    from hpogrow.stats import student_t_quantile

    difference = statistics.fmean(values) - statistics.fmean(reference)
    if min(len(values), len(reference)) < 2 or not all(math.isfinite(v) for v in [*values, *reference]):
        return difference, -math.inf, math.inf
    a, b = statistics.variance(values) / len(values), statistics.variance(reference) / len(reference)
    if a + b == 0:
        return difference, difference, difference
    freedom = (a + b) ** 2 / (a * a / (len(values) - 1) + b * b / (len(reference) - 1))
    half = student_t_quantile(0.975, freedom) * math.sqrt(a + b)
    return difference, difference - half, difference + half


def against(rows: list[dict], names: list[str]) -> list[dict]:
    """Every sampler after the first against the first (the default): differences of mean regret."""
    by_name = {name: [row for row in rows if row["sampler"] == name] for name in names}
    found = []
    for name in names[1:]:
        entry = {"sampler": name, "reference": names[0]}
        for key in ("regret", "grid_regret"):
            entry[key] = welch_interval([r[key] for r in by_name[name]], [r[key] for r in by_name[names[0]]])
        found.append(entry)
    return found


def summarise(rows: list[dict]) -> dict:
    """Mean regrets with 95% t-intervals over seeds (infinite when a search chose nothing), median,
    within-noise count, diverged trials and wall time per search."""
    regrets = [row["regret"] for row in rows]
    mean, low, high = mean_interval(regrets)
    grid_mean, grid_low, grid_high = mean_interval([row["grid_regret"] for row in rows])
    return {"sampler": rows[0]["sampler"], "seeds": len(rows), "mean": mean, "low": low, "high": high,
            "median": statistics.median(regrets), "worst": max(regrets),
            "grid_mean": grid_mean, "grid_low": grid_low, "grid_high": grid_high,
            "within_noise": sum(row["within_noise"] for row in rows),
            "diverged_mean": statistics.fmean(row["diverged"] for row in rows),
            "failed_mean": statistics.fmean(row["failed"] for row in rows),
            "seconds_median": statistics.median(row["seconds"] for row in rows)}


def _run(function, jobs: list, processes: int) -> Iterator:
    """``function`` over ``jobs``, results in order as they finish, on ``processes`` spawned
    processes (1: here)."""
    if processes == 1:
        import torch

        from hpogrow.train import torch_threads

        with torch_threads(torch.get_num_threads()):  # the jobs set one thread; restore after
            yield from map(function, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(processes) as workers:
        yield from workers.imap(function, jobs, chunksize=1)


def _load_searches(path: str | None) -> dict[tuple, dict]:
    """Searches already run (``--save``), by job: a long comparison survives a restart or grows."""
    if not path or not Path(path).exists():
        return {}
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {tuple(line["job"]): line["search"] for line in lines}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True, help="the dense grid, from bench/halving_pool.py")
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--tokens-per-param", type=float, default=1.0)
    parser.add_argument("--space", default=None, help="search-space YAML (default: the LM space)")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=6, help="sampler seeds 0, 1, …")
    parser.add_argument("--samplers", nargs="+", default=None, help="default: all")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--save", default=None, help="JSON lines of finished searches: appended to, and read "
                        "back on a rerun so that only missing searches train")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.base_width, args.trials, args.seeds, args.processes = 32, 3, 1, 1
        args.samplers = args.samplers or ["tpe+div", "random"]
    names = args.samplers or list(_samplers())
    unknown = set(names) - set(_samplers())
    if unknown:
        parser.error(f"unknown samplers {sorted(unknown)}; choose from {list(_samplers())}")
    if any(name.startswith("gp") for name in names) and importlib.util.find_spec("scipy") is None:
        parser.error("the GP samplers need scipy (pip install scipy), or leave them out with --samplers")
    console = Console(width=WIDTH)
    shape = (args.base_width, args.tokens_per_param, args.space)

    jobs = [(name, seed, args.trials, *shape) for seed in range(args.seeds) for name in names]  # seed-major
    saved = _load_searches(args.save)
    todo = [job for job in jobs if job not in saved]
    console.print(f"{len(todo)} searches of {args.trials} trials on {args.processes} process(es) "
                  f"({len(jobs) - len(todo)} read from {args.save})")
    for job, search in zip(todo, _run(_search, todo, args.processes)):
        saved[job] = search
        if args.save:
            with open(args.save, "a") as handle:
                handle.write(json.dumps({"job": job, "search": search}) + "\n")
    searches = [saved[job] for job in jobs]
    budget = searches[0]["budget"]

    pool = _wait_for(Path(args.pool), console)
    if (pool["base_width"], pool["tokens_per_param"], pool["seed"]) != (args.base_width, args.tokens_per_param, 0):
        raise SystemExit(f"{args.pool}: grid at width {pool['base_width']}, {pool['tokens_per_param']} tokens/param, "
                         f"seed {pool['seed']}; this run is width {args.base_width}, {args.tokens_per_param}, seed 0")
    grid = grid_at(pool, budget)
    if not grid:
        raise SystemExit(f"{args.pool}: no configuration has a loss at the budget {budget:,} tokens; its curve "
                         "must hold that token count (rerun bench/halving_pool.py with this plan's budget)")
    best = min(grid, key=lambda g: g["loss"])
    ours = next(_run(_curve, [({"learning_rate": best["learning_rate"], "batch_size": best["batch_size"]}, *shape)], 1))
    theirs = next(r["curve"] for r in pool["runs"]
                  if (r["learning_rate"], r["batch_size"]) == (best["learning_rate"], best["batch_size"]))
    shared = [tokens for tokens in ours if str(tokens) in theirs]
    reproduction = max(abs(ours[tokens] - theirs[str(tokens)]) for tokens in shared)

    rows = [regret_row(search, grid) for search in searches]
    summary = [summarise([row for row in rows if row["sampler"] == name]) for name in names]
    differences = against(rows, names)
    jitter = grid_jitter(grid, best["loss"])
    tables = [_grid_table(pool, grid, best, budget, reproduction, len(shared), jitter),
              _rows_table(rows, names, args), _summary_table(summary, args, budget)]
    if differences:
        tables.append(_against_table(differences))
    for table in tables:
        console.print(table)
    notes = (f"Regret: chosen configuration's held-out loss at {budget:,} tokens minus the grid's best "
             f"({best['loss']:.4f}); on the grid: the grid's loss at the chosen configuration (linear in log learning "
             "rate between grid points) minus the same best, free of the search's selection on its own runs' jitter; "
             f"intervals: 95% t over {args.seeds} sampler seed(s) (training seed 0 throughout). "
             f"Within noise: regret ≤ {NOISE_BAND:.1%} of the best loss (the pool has no per-unit losses at this budget). "
             f"Jitter: the loss's roughness along the learning rate near the optimum, σ = {jitter['sigma']:.4f} "
             f"({jitter['relative']:.2%}) from {jitter['points']} grid points (grid_jitter): one run's loss differs from "
             "a smooth curve by about that much, the grid's best included, so regrets within a few σ of 0 tie. "
             "gp+div wraps GPSampler in DivergenceAwareSampler, but GPSampler reads only COMPLETE and RUNNING trials, "
             "so diverged trials stay invisible to it: it differs from gp only in its per-trial seeding. "
             "gp: GPSampler's default 10 random start-up trials; gp-4 and the TPEs: 4."
             + "".join(f" {entry['sampler']} against {entry['reference']}: {_verdict(entry['regret'])} on regret, "
                       f"{_verdict(entry['grid_regret'])} on the grid." for entry in differences))
    console.print(notes)
    record = make_record("sampler_compare", argv, args, modules=("torch", "optuna", "mup"), budget=budget,
                         grid_best=best, grid_size=len(pool["runs"]), reproduction_max_abs=reproduction,
                         reproduction_points=len(shared), grid_jitter=jitter, rows=rows, summary=summary, against=differences,
                         searches=searches)
    append_result(args, record, tables, notes, console)
    return record


def _wait_for(path: Path, console: Console, hours: float = 2.0) -> dict:
    """The pool, once written (it may still be training when the searches end)."""
    deadline = time.monotonic() + hours * 3600
    if not path.exists():
        console.print(f"waiting for {path}")
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(30)
    return json.loads(path.read_text())


def grid_jitter(grid: list[dict], best_loss: float, within: float = 0.02) -> dict:
    """How rough the loss is along the learning rate near the optimum: per batch size, with the
    grid sorted by learning rate, each configuration within ``within`` of the best loss against the
    mean of its two neighbours. With independent jitter σ per run that difference has variance
    1.5 σ², so σ = RMS / √1.5. The grid's best is one draw of that jitter: regrets of a few σ
    either way do not say that a search missed the optimum.

    Example::

        >>> grid = [{"learning_rate": lr, "batch_size": 16, "loss": loss} for lr, loss in [(1, 3.0), (2, 2.9), (3, 3.0)]]
        >>> round(grid_jitter(grid, 2.9)["sigma"], 4)  # 2.9 against (3.0 + 3.0) / 2: 0.1 / √1.5
        0.0816
    """
    residuals = []
    for batch in sorted({g["batch_size"] for g in grid}):
        line = sorted((g for g in grid if g["batch_size"] == batch), key=lambda g: g["learning_rate"])
        residuals += [line[i]["loss"] - (line[i - 1]["loss"] + line[i + 1]["loss"]) / 2
                      for i in range(1, len(line) - 1) if line[i]["loss"] <= (1 + within) * best_loss]
    if not residuals:
        return {"sigma": math.nan, "relative": math.nan, "points": 0}
    sigma = math.sqrt(statistics.fmean(r * r for r in residuals) / 1.5)
    return {"sigma": sigma, "relative": sigma / best_loss, "points": len(residuals)}


def _grid_table(pool: dict, grid: list[dict], best: dict, budget: int, reproduction: float, points: int,
                jitter: dict) -> Table:
    table = Table(title=f"dense grid at width {pool['base_width']}, {budget:,} tokens (training seed {pool['seed']})")
    for column in ("configurations", "with a loss at the budget", "best (lr, batch)", "best loss",
                   f"retrained best: max |Δ| over {points} evaluations", "jitter σ near the optimum"):
        table.add_column(column, justify="right")
    table.add_row(str(len(pool["runs"])), str(len(grid)), f"{best['learning_rate']:.3g}, {best['batch_size']}",
                  f"{best['loss']:.4f}", f"{reproduction:.1e}",
                  f"{jitter['sigma']:.4f} ({jitter['relative']:.2%}), {jitter['points']} points")
    return table


def _rows_table(rows: list[dict], names: list[str], args) -> Table:
    table = Table(title=f"every search: {args.trials} trials to the full budget, width {args.base_width}")
    for column in ("seed", "sampler", "chosen (lr, batch)", "chosen loss", "regret", "on the grid", "diverged / failed",
                   "wall s"):
        table.add_column(column, justify="right")
    for row in sorted(rows, key=lambda r: (r["seed"], names.index(r["sampler"]))):
        chosen = row["chosen"]
        table.add_row(str(row["seed"]), row["sampler"],
                      f"{chosen['learning_rate']:.3g}, {chosen['batch_size']}" if chosen else "none COMPLETE",
                      f"{chosen['loss']:.4f}" if chosen else "—", f"{row['regret']:+.4f}", f"{row['grid_regret']:+.4f}",
                      f"{row['diverged']} / {row['failed']}", f"{row['seconds']:.0f}")
    return table


def _summary_table(summary: list[dict], args, budget: int) -> Table:
    table = Table(title=f"per sampler over {args.seeds} seed(s): regret against the grid's best at {budget:,} tokens")
    for column in ("sampler", "mean regret [95% t]", "median", "worst", "on the grid: mean [95% t]", f"within {NOISE_BAND:.1%}",
                   "diverged per search", "failed per search", "wall s per search (median)"):
        table.add_column(column, justify="right")
    for entry in summary:
        table.add_row(entry["sampler"], _with_interval(entry["mean"], entry["low"], entry["high"]),
                      f"{entry['median']:+.4f}", f"{entry['worst']:+.4f}",
                      _with_interval(entry["grid_mean"], entry["grid_low"], entry["grid_high"]),
                      f"{entry['within_noise']} of {entry['seeds']}",
                      f"{entry['diverged_mean']:.1f}", f"{entry['failed_mean']:.1f}", f"{entry['seconds_median']:.0f}")
    return table


def _against_table(differences: list[dict]) -> Table:
    table = Table(title=f"against {differences[0]['reference']}: difference of mean regret [95% Welch t]")
    for column in ("sampler", "Δ regret", "Δ on the grid"):
        table.add_column(column, justify="right")
    for entry in differences:
        table.add_row(entry["sampler"], _with_interval(*entry["regret"]), _with_interval(*entry["grid_regret"]))
    return table


def _verdict(difference: tuple[float, float, float]) -> str:
    _, low, high = difference
    return "lower (interval below 0)" if high < 0 else "higher (interval above 0)" if low > 0 else "not separated"


def _with_interval(mean: float, low: float, high: float) -> str:
    return f"{mean:+.4f}" + (f" [{low:+.4f}, {high:+.4f}]" if math.isfinite(high - low) else "")


if __name__ == "__main__":
    main()
