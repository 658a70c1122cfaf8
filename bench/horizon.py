"""The target's learning rate across the token horizon (issue 23, item 3): is lr* ∝ tokens^(−α),
and does scaling the target runs' learning rate by (target/base tokens)^(−α) help?

1. **Fit** (:func:`hpogrow.search.horizon.fit_horizon`) on the grids of ``bench/halving_pool.py``
   (``--pool``, read, not rerun: 32 or 16 log-spaced learning rates × batch sizes {16, 32},
   training seed 0, constant learning rate, so a curve's prefix is the run to that budget): at 9
   log-spaced token counts from B/16 to B the best learning rate per batch size, then α with a 95%
   interval over resampled runs (a run's whole curve is one unit; the module says why a t-interval
   on the slope would not be honest). The same fit on the survivors of successive halving over the
   grid (the pool's 2^3 design, batch sizes ranked together, as a study would) says whether a
   study's own trials can determine α. Which batch size wins at each token count, with the eval
   set's paired standard error where the pool kept per-unit losses.
2. **Validate** at the target: the grid's best configuration at B retrained at the base width
   (:class:`hpogrow.runs.BaseTrial`, the default budget), grown to ``--target-width`` as the
   pipeline grows (:func:`hpogrow.growth.grow_checkpoint`, seed s, fresh tokens per seed), then
   warmstart and μP scratch at the plan's target tokens with learning rate × {0.5, 1, 2} and ×
   the horizon factor of each pool's α, seeds 0..``--seeds``−1: final loss, mean and 95%
   t-interval over seeds, and the paired difference from ×1. The first pool's width is the base's.

    python bench/horizon.py --pool studies/pool-w64.json --pool studies/pool-w128.json   # ~15 min on 2 cores
    python bench/horizon.py --quick --pool POOL.json                                     # smoke size
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.search.horizon import HorizonFit, Observation, fit_horizon, horizon_factor, log_spaced_tokens, optima
from hpogrow.stats import student_t_quantile

HALVING = "2^3"
"""The pool's design whose survivors stand for a study's trials (reduction factor 2, 3 rungs below the budget)."""


# 1. The fit on a pool.
def pool_observations(pool: dict) -> list[Observation]:
    """Every run's curve as observations; after a divergence the run's loss is infinite."""
    found = []
    every = sorted({int(t) for run in pool["runs"] for t in run["curve"]} - {0})
    for index, run in enumerate(pool["runs"]):
        curve = {int(t): loss for t, loss in run["curve"].items()}
        for tokens in every:
            loss = curve.get(tokens, math.inf if run["diverged"] else None)
            if loss is not None:
                found.append(Observation(tokens, run["learning_rate"], run["batch_size"], loss, index))
    return found


def base_budget(pool: dict) -> int:
    """B: the plan's base budget at the pool's width (its asked tokens, rounded to an evaluation)."""
    every = {int(t) for run in pool["runs"] for t in run["curve"]}
    return min(every, key=lambda t: abs(t - pool["asked_tokens"]))


def survivors(pool: dict, observations: list[Observation], design: str) -> list[Observation]:
    """The observations a successive-halving study over the pool's grid would have: at each rung
    the best 1/reduction of the runs still going (batch sizes together) go on."""
    rungs = pool["designs"][design]["rungs"]
    factor = int(design.split("^")[0])
    losses = {(o.run, o.tokens): o.loss for o in observations}
    going, reached = set(range(len(pool["runs"]))), {}
    for rung in rungs:
        for run in going:
            reached[run] = rung
        ranked = sorted(going, key=lambda run: losses.get((run, rung), math.inf))
        going = set(ranked[:max(1, math.ceil(len(ranked) / factor))])
    for run in going:
        reached[run] = pool["designs"][design]["budget"]
    return [o for o in observations if o.tokens <= reached[o.run]]


def batch_rows(pool: dict, observations: list[Observation], tokens: list[int]) -> list[dict]:
    """Per token count, each batch size's best (fitted) loss; where the pool kept per-unit
    losses, the paired gap between the two batch sizes' best grid runs and its standard error."""
    rows = []
    for count in tokens:
        best = {o.batch_size: o for o in optima(observations, [count])}
        row = {"tokens": count, "loss": {b: p.loss for b, p in best.items()},
               "learning_rate": {b: p.learning_rate for b, p in best.items()},
               "grid_learning_rate": {b: p.grid_learning_rate for b, p in best.items()}}
        units = {}
        for index, run in enumerate(pool["runs"]):
            if str(count) in run.get("units", {}):
                units[index] = run["units"][str(count)]
        if units and len(best) == 2:
            grid = {}
            for o in observations:
                if o.tokens == count and o.run in units and math.isfinite(o.loss):
                    if o.batch_size not in grid or o.loss < grid[o.batch_size].loss:
                        grid[o.batch_size] = o
            if len(grid) == 2:
                small, large = (units[grid[b].run] for b in sorted(grid))
                differences = [a - b for a, b in zip(small, large)]
                row["gap"] = statistics.fmean(differences)
                row["gap_se"] = statistics.stdev(differences) / math.sqrt(len(differences))
        rows.append(row)
    return rows


def _unit_tokens(pool: dict) -> set[int]:
    """Token counts at which the pool kept per-unit losses (the designs' budgets)."""
    return {int(t) for run in pool["runs"] for t in run.get("units", {})}


def fit_pool(path: str, resamples: int) -> dict:
    pool = json.loads(Path(path).read_text())
    observations = pool_observations(pool)
    budget = base_budget(pool)
    tokens = log_spaced_tokens({o.tokens for o in observations}, budget / 16, budget)
    fit = fit_horizon(observations, tokens, resamples=resamples)
    kept = survivors(pool, observations, HALVING) if HALVING in pool["designs"] else []
    in_study = fit_horizon(kept, tokens, resamples=resamples) if kept else None
    return {"path": path, "pool": pool, "budget": budget, "tokens": tokens, "fit": fit, "in_study": in_study,
            "observations": observations, "batches": batch_rows(pool, observations, sorted(set(tokens) | _unit_tokens(pool))),
            "diverged": sum(1 for run in pool["runs"] if run["diverged"])}


def _fit_record(fit: HorizonFit | None) -> dict | None:
    if fit is None:
        return None
    return {"alpha": fit.alpha, "alpha_ci": fit.alpha_ci, "alpha_per_batch": dict(fit.alpha_per_batch),
            "resamples": fit.resamples, "resamples_fitted": fit.resamples_fitted,
            "optima": [[p.tokens, p.batch_size, p.learning_rate, p.loss, p.reason] for p in fit.optima]}


def _alpha(fit: HorizonFit | None) -> str:
    if fit is None:
        return "not fitted (fewer than 3 optima located)"
    interval = "no interval" if fit.alpha_ci is None else f"[{fit.alpha_ci[0]:.3f}, {fit.alpha_ci[1]:.3f}]"
    return f"{fit.alpha:.3f} {interval}"


def fit_tables(fitted: list[dict], ratio: float) -> tuple[Table, Table]:
    optimum_table = Table(title="best learning rate per batch size at each token count (quadratic in log lr through the "
                                "grid's lowest point ± 2; n.l.: not located (at the grid's edge, concave, or the vertex outside the window), the grid's best shown), and the loss of each batch size's best; "
                                "eval SE: the paired standard error over eval units of the two best grid runs' gap")
    for column in ("pool", "tokens", "t/B", "in fit", "lr* b16", "lr* b32", "loss b16", "loss b32",
                   "b32 − b16 (eval SE)"):
        optimum_table.add_column(column, justify="right")
    for entry in fitted:
        for row in entry["batches"]:
            count, cells = row["tokens"], []
            for batch in (16, 32):
                rate = row["learning_rate"].get(batch)
                cells.append(f"{rate:.2e}" if rate else ("—" if batch not in row["grid_learning_rate"]
                                                          else f"n.l. {row['grid_learning_rate'][batch]:.1e}"))
            gap = row.get("gap")
            gap_text = "—" if gap is None else f"{-gap:+.4f} ({row['gap_se']:.4f})"
            optimum_table.add_row(f"w{entry['pool']['base_width']}", f"{count:,}", f"{count / entry['budget']:.3g}",
                                  "✓" if count in entry["tokens"] else "", *cells,
                                  *(f"{row['loss'][b]:.4f}" if b in row["loss"] else "—" for b in (16, 32)), gap_text)
    alpha_table = Table(title="α of lr* ∝ tokens^(−α), 95% interval over resampled runs (seed 0 only: not the "
                              "seed-to-seed spread)")
    for column in ("pool", "B", "runs (diverged)", "α both batches", "α b16", "α b32", "optima located",
                   f"factor ({ratio:.3g})^(−α)", f"in-study: survivors of {HALVING}"):
        alpha_table.add_column(column, justify="right")
    for entry in fitted:
        fit = entry["fit"]
        per_batch = dict(fit.alpha_per_batch) if fit else {}
        located = sum(p.learning_rate is not None for p in fit.optima) if fit else 0
        alpha_table.add_row(f"w{entry['pool']['base_width']}", f"{entry['budget']:,}",
                            f"{len(entry['pool']['runs'])} ({entry['diverged']})", _alpha(fit),
                            *(f"{per_batch[b]:.3f}" if b in per_batch else "—" for b in (16, 32)),
                            f"{located}/{len(fit.optima) if fit else 0}",
                            f"{horizon_factor(fit.alpha, 1, ratio):.3f}" if fit else "—", _alpha(entry["in_study"]))
    return optimum_table, alpha_table


# 2. The validation at the target.
def _setup(quick: bool, base_width: int, target_width: int):
    from hpogrow.search import SearchConfig
    from hpogrow.search.plan import make_plan
    from hpogrow.tasks import LanguageTask

    task = LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=256) if quick else LanguageTask()
    config = SearchConfig(base_width=base_width, target_width=target_width, executor="local", evaluations=4 if quick else 16,
                          tokens_per_param=4.0 if quick else 1.0, workdir=tempfile.mkdtemp(prefix="hpogrow-horizon-"))
    return task, config, make_plan(task, config)


def _target_run(job: dict) -> dict:
    """One warmstart or scratch run at the target (in a worker process, one torch thread)."""
    import torch

    torch.set_num_threads(1)
    from hpogrow.errors import TrainingDiverged
    from hpogrow.runs import run_scratch, run_warmstart

    task, config, plan = _setup(job["quick"], job["base_width"], job["target_width"])
    run_config = replace(plan.template, learning_rate=job["learning_rate"], batch_size=job["batch_size"],
                         tokens=plan.target_tokens, eval_tokens=(), seed=job["seed"], device="cpu")
    target_task = plan.task_at(plan.growth)
    try:
        if job["arm"] == "warmstart":
            outcome = run_warmstart(target_task, Path(job["grown"]), run_config, None, data_position=job["position"])
        else:
            outcome = run_scratch(target_task, plan.growth.target_width, config.base_width, run_config, job["position"], None)
        return {**job, "final_loss": outcome.final_loss, "diverged": None}
    except TrainingDiverged as error:
        return {**job, "final_loss": math.inf, "diverged": str(error)}


def t_interval(values: list[float]) -> tuple[float, tuple[float, float] | None]:
    mean = statistics.fmean(values)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return mean, None
    half = student_t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def validate(args, entry: dict, alphas: dict[str, float]) -> dict:
    """Base retrained, grown per seed, target runs at each multiplier and at each horizon factor
    (``alphas``: α by the pool it was fitted on; see the module docstring)."""
    import torch

    from hpogrow.growth import grow_checkpoint
    from hpogrow.runs import BaseTrial

    torch.set_num_threads(1)
    pool, budget = entry["pool"], entry["budget"]
    best = min((o for o in entry["observations"] if o.tokens == budget and math.isfinite(o.loss)), key=lambda o: o.loss)
    task, config, plan = _setup(args.quick, pool["base_width"] if not args.quick else 16, args.target_width)
    root = Path(tempfile.mkdtemp(prefix="hpogrow-horizon-runs-"))
    template = replace(plan.template, device="cpu")
    base = BaseTrial(task, config.base_width, template, root / "base").run(
        {"learning_rate": best.learning_rate, "batch_size": best.batch_size}, 0)
    factors = {name: horizon_factor(alpha, plan.base_tokens, plan.target_tokens) for name, alpha in alphas.items()}
    multipliers = {**{f"×{m:g}": m for m in sorted({1.0, *args.multipliers})},
                   **{f"horizon {name} ×{factor:.3f}": factor for name, factor in factors.items()}}
    jobs = []
    for seed in range(args.seeds):
        grown = grow_checkpoint(base.checkpoint, root / f"grown{seed}", target_width=plan.growth.target_width,
                                operator=config.grow_op, shrink=config.shrink, noise_scale=config.noise_scale, seed=seed,
                                carry_optimizer=config.carry_optimizer, task=task)
        position = base.state.data_position + seed * plan.supply.budget.pair_examples
        for arm in ("warmstart", "scratch"):
            for label, multiplier in multipliers.items():
                jobs.append({"arm": arm, "label": label, "multiplier": multiplier, "seed": seed,
                             "learning_rate": best.learning_rate * multiplier, "batch_size": best.batch_size,
                             "grown": str(grown.path), "position": position, "quick": args.quick,
                             "base_width": config.base_width, "target_width": args.target_width})
    if args.processes <= 1:  # in this process (the smoke test: a spawned worker cannot import this script by name)
        runs = [_target_run(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(args.processes) as workers:
            runs = workers.map(_target_run, jobs, chunksize=1)
    return {"base_learning_rate": best.learning_rate, "base_batch_size": best.batch_size,
            "base_final_loss": base.final_loss, "base_tokens": plan.base_tokens, "target_tokens": plan.target_tokens,
            "base_width": config.base_width, "target_width": plan.growth.target_width, "alphas": alphas,
            "factors": factors, "multipliers": multipliers, "runs": runs}


def validation_table(result: dict, seeds: int) -> tuple[Table, list[dict]]:
    table = Table(title=f"target runs at width {result['target_width']} on {result['target_tokens']:,} tokens "
                        f"(base w{result['base_width']} on {result['base_tokens']:,}, lr {result['base_learning_rate']:.3g}, "
                        f"batch {result['base_batch_size']}): final loss over seeds 0–{seeds - 1}, mean [95% t-interval]; "
                        "paired by seed against ×1")
    for column in ("arm", "learning rate", "final loss", "− ×1 (paired)", "diverged", "best"):
        table.add_column(column, justify="right")
    rows = []
    for arm in ("warmstart", "scratch"):
        by_label = {label: sorted((r for r in result["runs"] if r["arm"] == arm and r["label"] == label),
                                  key=lambda r: r["seed"]) for label in result["multipliers"]}
        means = {label: t_interval([r["final_loss"] for r in runs]) for label, runs in by_label.items()}
        winner = min(means, key=lambda label: means[label][0])
        for label, runs in by_label.items():
            mean, interval = means[label]
            differences = [a["final_loss"] - b["final_loss"] for a, b in zip(runs, by_label["×1"])]
            gap, gap_interval = t_interval(differences)
            rows.append({"arm": arm, "label": label, "multiplier": result["multipliers"][label],
                         "learning_rate": runs[0]["learning_rate"], "losses": [r["final_loss"] for r in runs],
                         "mean": mean, "ci": interval, "minus_x1": gap, "minus_x1_ci": gap_interval,
                         "diverged": sum(r["diverged"] is not None for r in runs), "best": label == winner})
            table.add_row(arm, f"{label} = {runs[0]['learning_rate']:.3g}",
                          f"{mean:.4f}" + ("" if interval is None else f" [{interval[0]:.4f}, {interval[1]:.4f}]"),
                          "—" if label == "×1" else f"{gap:+.4f}" + ("" if gap_interval is None else
                                                                    f" [{gap_interval[0]:+.4f}, {gap_interval[1]:+.4f}]"),
                          str(rows[-1]["diverged"]), "✓" if label == winner else "")
    return table, rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", action="append", required=True, help="a bench/halving_pool.py JSON (first: the base width validated)")
    parser.add_argument("--target-width", type=int, default=128)
    parser.add_argument("--multipliers", type=lambda text: [float(m) for m in text.split(",")], default=[0.5, 1.0, 2.0],
                        help="of the base winner's learning rate, comma-separated (×1 is always run: the pairing's reference)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fit-only", action="store_true", help="the fit tables alone, no target runs")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.target_width, args.seeds, args.resamples, args.processes = 32, 2, 50, 1
    console = Console(width=WIDTH)
    fitted = [fit_pool(path, args.resamples) for path in args.pool]
    _, _, plan = _setup(args.quick, fitted[0]["pool"]["base_width"] if not args.quick else 16, args.target_width)
    optimum_table, alpha_table = fit_tables(fitted, plan.target_tokens / plan.base_tokens)
    console.print(optimum_table)
    console.print(alpha_table)
    fits = [{"pool": entry["path"], "base_width": entry["pool"]["base_width"], "budget": entry["budget"],
             "tokens": entry["tokens"], "diverged": entry["diverged"], "fit": _fit_record(entry["fit"]),
             "in_study": _fit_record(entry["in_study"]), "batches": entry["batches"]} for entry in fitted]
    if args.fit_only:
        record = make_record("horizon", argv, args, fits=fits)
        append_result(args, record, [optimum_table, alpha_table], console=console)
        return record
    alphas = {f"w{entry['pool']['base_width']}": entry["fit"].alpha for entry in fitted if entry["fit"] is not None}
    result = validate(args, fitted[0], alphas)
    table, rows = validation_table(result, args.seeds)
    console.print(table)
    winners = {row["arm"]: row["label"] for row in rows if row["best"]}
    factors = ", ".join(f"α of {entry['path']} {_alpha(entry['fit'])}: ×{result['factors'][name]:.3f}"
                        for name, entry in zip(alphas, [e for e in fitted if e["fit"] is not None]))
    notes = (f"Horizon factors ({result['target_tokens']:,}/{result['base_tokens']:,})^(−α): {factors}. "
             f"Lowest mean final loss: warmstart {winners['warmstart']}, scratch {winners['scratch']}.")
    console.print(notes)
    record = make_record("horizon", argv, args, fits=fits, validation={key: value for key, value in result.items()
                                                                       if key != "runs"}, runs=result["runs"], rows=rows)
    append_result(args, record, [optimum_table, alpha_table, table], notes, console)
    return record


if __name__ == "__main__":
    main()
