"""Real successive-halving searches against the full search over the same configurations
(issue 23, item 1: the replay's choice confirmed by training).

For each search seed, ``--trials`` configurations are drawn (seeded, without replacement) from
the grid of a pool that ``bench/halving_pool.py`` trained to the full budget, and enqueued in that
order into a fresh study that hpogrow's default successive halving runs through the plan
``make_plan`` builds for ``hpogrow search --base-width W --trials N`` — in process and on Ray. The
pool is the full search: every drawn configuration's loss at the budget, with the training seed
and tokens the real search uses (checked: ``max |Δ loss|`` over every rung value the search
recorded). Per search: the tokens its base trials spent (the sum of their ``fidelity_reached``)
against ``trials`` × budget, whether its winner is the full search's (or within the eval set's
noise of it: a paired difference of per-unit held-out losses under 2 standard errors), and the
states of its trials.

    python bench/halving_real.py --pool studies/pool-w64.json   # 6 seeds × 2 executors, ~5 min on 2 cores
    python bench/halving_real.py --quick --pool POOL             # smoke size
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow import record
from hpogrow.search import SearchConfig
from hpogrow.search.plan import make_executor_for, make_plan
from hpogrow.search.sampler import make_sampler
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import LanguageTask

TrialState = optuna.trial.TrialState
GOAL = 0.25


def within_noise(units_a: list[float], units_b: list[float]) -> bool:
    """Whether two configurations' held-out losses (per unit, on the same units) differ by less
    than 2 standard errors of their paired mean difference."""
    differences = [a - b for a, b in zip(units_a, units_b)]
    mean = statistics.fmean(differences)
    error = statistics.stdev(differences) / math.sqrt(len(differences))
    return abs(mean) < 2 * error


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True, help="JSON written by bench/halving_pool.py")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=6, help="search seeds 0, 1, …: which configurations, in which order")
    parser.add_argument("--executors", nargs="+", default=["local", "ray"])
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.executors, args.trials = 1, ["local"], 4
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    console = Console(width=WIDTH)
    pool = json.loads(Path(args.pool).read_text())
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpogrow-halving-real-") as folder:
        for seed in range(args.seeds):
            drawn = random.Random(seed).sample(range(len(pool["runs"])), min(args.trials, len(pool["runs"])))
            for executor in args.executors:
                rows.append(_search(pool, drawn, seed, executor, args, Path(folder) / f"{executor}-{seed}", console))
    summary = _summarise(rows, args)
    tables = [_rows_table(rows, pool, args), _summary_table(summary, args)]
    for table in tables:
        console.print(table)
    notes = (f"Hit: the halving winner is the full search's winner, or its full-budget loss is within 2 paired "
             f"standard errors of the winner's on the {len(pool['runs'][0]['units'][str(rows[0]['budget'])])} held-out "
             "units. The full search is the pool (every configuration trained to the budget, same training seed and "
             "tokens); max |Δ loss| compares every value a search recorded with the pool's at the same token count. "
             f"Pool: {args.pool} (width {pool['base_width']}, {len(pool['runs'])} configurations).")
    console.print(notes)
    result = make_record("halving_real", argv, args, modules=("torch", "ray", "optuna", "mup"), rows=rows,
                         summary=summary)
    append_result(args, result, tables, notes, console)
    return result


def _search(pool: dict, drawn: list[int], seed: int, executor_name: str, args, workdir: Path,
            console: Console) -> dict:
    config = SearchConfig(base_width=pool["base_width"], trials=args.trials, tokens_per_param=pool["tokens_per_param"],
                          executor=executor_name, seed=pool["seed"], workdir=str(workdir), device="cpu")
    executor = make_executor_for(config)
    task = LanguageTask()
    plan = make_plan(task, config, executor)
    budget = plan.schedule.budget
    study = load_or_create_study(open_storage(config.storage_url), plan.base_study, {"bench": "halving_real"},
                                 make_sampler(seed), executor.pruner(budget))
    runs = [pool["runs"][index] for index in drawn]
    for run in runs:
        study.enqueue_trial({"learning_rate": run["learning_rate"], "batch_size": run["batch_size"]})
    console.print(f"seed {seed}, {executor_name}: {args.trials} trials, {executor.design(plan.schedule)}")
    start = time.perf_counter()
    with executor.session():
        executor.run(study, plan.space, args.trials, plan.base_trial())
    seconds = time.perf_counter() - start
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    key = str(budget)
    full = {i: run["curve"][key] for i, run in enumerate(runs) if key in run["curve"] and not run["diverged"]}
    best = min(full, key=full.get)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    chosen = min(complete, key=lambda t: t.value).number if complete else None
    differences = [abs(value - runs[t.number]["curve"][str(tokens)]) for t in trials
                   for tokens, value in t.intermediate_values.items() if str(tokens) in runs[t.number]["curve"]]
    spent = sum(record.RunRecord.of(t).fidelity_reached or 0 for t in trials)
    hit = chosen is not None and (chosen == best or within_noise(runs[chosen]["units"][key], runs[best]["units"][key]))
    states = [t.state.name for t in trials]
    return {"seed": seed, "executor": executor_name, "budget": budget, "rungs": list(plan.schedule.rungs),
            "design": executor.design(plan.schedule), "drawn": drawn, "spent": spent,
            "fraction": spent / (args.trials * budget), "expected": executor.spend(args.trials, plan.schedule),
            "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
            "full_winner": best, "full_loss": full[best], "chosen": chosen,
            "chosen_full_loss": None if chosen is None else full.get(chosen), "exact": chosen == best, "hit": hit,
            "max_loss_difference": max(differences) if differences else None, "seconds": seconds}


def _summarise(rows: list[dict], args) -> list[dict]:
    summary = []
    for executor in args.executors:
        mine = [row for row in rows if row["executor"] == executor]
        fractions = [row["fraction"] for row in mine]
        summary.append({"executor": executor, "searches": len(mine), "hits": sum(row["hit"] for row in mine),
                        "exact": sum(row["exact"] for row in mine), "fraction_mean": statistics.fmean(fractions),
                        "fraction_min": min(fractions), "fraction_max": max(fractions),
                        "goal_met": sum(row["hit"] and row["fraction"] <= GOAL for row in mine),
                        "seconds_mean": statistics.fmean(row["seconds"] for row in mine)})
    return summary


def _rows_table(rows: list[dict], pool: dict, args) -> Table:
    table = Table(title=f"successive halving (default design) against the full search, embedded LM width "
                        f"{pool['base_width']}, {args.trials} configurations per search, {rows[0]['budget']:,} tokens "
                        f"each, rungs {' → '.join(f'{r:,}' for r in rows[0]['rungs'])}")
    for column in ("seed", "executor", "C/P/F", "tokens", "× full", "expected", "full winner (loss)",
                   "halving winner (full loss)", "hit", "max |Δ loss|", "wall s"):
        table.add_column(column, justify="right")
    for row in rows:
        chosen = "none" if row["chosen"] is None else f"#{row['chosen']} ({row['chosen_full_loss']:.4f})"
        table.add_row(str(row["seed"]), row["executor"], f"{row['complete']}/{row['pruned']}/{row['failed']}",
                      f"{row['spent']:,}", f"{row['fraction']:.3f}", f"{row['expected']:.3f}",
                      f"#{row['full_winner']} ({row['full_loss']:.4f})", chosen,
                      ("exact" if row["exact"] else "noise") if row["hit"] else "NO",
                      "—" if row["max_loss_difference"] is None else f"{row['max_loss_difference']:.1e}",
                      f"{row['seconds']:.0f}")
    return table


def _summary_table(summary: list[dict], args) -> Table:
    table = Table(title=f"per executor, over {args.seeds} search seeds: goal = a hit at ≤ {GOAL:g}× the tokens")
    for column in ("executor", "hits (exact)", "× full: mean [min, max]", "hit at ≤ goal", "wall s per search"):
        table.add_column(column, justify="right")
    for entry in summary:
        table.add_row(entry["executor"], f"{entry['hits']} of {entry['searches']} ({entry['exact']})",
                      f"{entry['fraction_mean']:.3f} [{entry['fraction_min']:.3f}, {entry['fraction_max']:.3f}]",
                      f"{entry['goal_met']} of {entry['searches']}", f"{entry['seconds_mean']:.0f}")
    return table


if __name__ == "__main__":
    main()
