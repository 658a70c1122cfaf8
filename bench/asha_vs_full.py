"""ASHA against a full-budget search over the same configurations, on the embedded LM (issue 11, item 7).

For each search seed, ``--trials`` configurations (learning rate, batch size) are drawn once from
the LM search space by a seeded random sampler and enqueued, in the same order, into fresh
studies that :class:`hpogrow.search.executors.ray.RayExecutor` runs through the plan ``make_plan``
builds (the real rungs and budget): once every trial to the full budget (scheduler ``none``; it
does not depend on the reduction factor, so it runs once per seed and serves every one), then
under ASHA at each ``--reduction-factors``. The budget is the one nearest ``--tokens-per-param``
on which every schedule lands, so all searches train a configuration on the same tokens and a
configuration's full-budget loss is the same number in both (checked: ``max |Δ loss|``).

Per seed and reduction factor: the tokens ASHA spent (the sum of every trial's
``fidelity_reached``) as a fraction of the full search's, and a **hit** when ASHA's winner is
the full search's winner or a configuration whose full-budget loss is within 1% of the full
search's best. Beside the fraction, what the rung schedule allows at all with these trials:

- **floor**: the least any ASHA run can spend, ``(B + (N − 1)·r₀) / (N·B)`` (budget B, smallest
  rung r₀, N trials): every trial reaches r₀, and the first trial at every rung is promoted, so
  one trial always trains to B.
- **halving**: what synchronous successive halving spends, keeping the best ⌊n/rf⌋ (at least
  one) of the n trials at each rung; asynchronous ASHA promotes early arrivals more freely, so
  it usually spends more than this.

ASHA's trials run one at a time by default (``--max-concurrent 1``): ASHA's decisions then
depend on the losses only, not on which of two concurrent trials reported first, and the token
figures are reproducible. Tokens are deterministic, so no wall time is reported.

    python bench/asha_vs_full.py            # width 32, 16 trials, 3 seeds, rf 2 and 3 (~15 min on 2 cores)
    python bench/asha_vs_full.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import statistics
import tempfile
from pathlib import Path

import optuna
import ray
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.search.executors.ray import RayExecutor
from hpogrow.search import SearchConfig
from hpogrow.search.plan import Plan, make_plan
from hpogrow.search.sampler import make_sampler
from hpogrow.search.schedule import Schedule, round_to
from hpogrow.search.space import load_space
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import LanguageTask

TrialState = optuna.trial.TrialState
WITHIN = 0.01
"""A configuration whose full-budget loss is within this fraction of the best counts as a hit."""
GOAL = 0.25
"""Issue 11's goal: a hit at no more than this fraction of the full search's tokens."""


def floor_fraction(schedule: Schedule, trials: int) -> float:
    """The least fraction of ``trials × budget`` tokens any ASHA run over ``schedule`` can spend.

    Example::

        >>> floor_fraction(Schedule(800, (100, 200, 400, 800)), 16)  # (800 + 15 * 100) / (16 * 800)
        0.1796875
    """
    return (schedule.budget + (trials - 1) * schedule.rungs[0]) / (trials * schedule.budget)


def halving_fraction(schedule: Schedule, trials: int, reduction_factor: int) -> float:
    """The fraction synchronous successive halving spends: the best ⌊n / rf⌋ (at least one) go on.

    Example::

        >>> halving_fraction(Schedule(800, (100, 200, 400, 800)), 16, 2)  # 16, 8, 4, 2 trials at the rungs
        0.3125
    """
    tokens, survivors, previous = 0, trials, 0
    for rung in schedule.rungs:
        tokens += survivors * (rung - previous)
        survivors, previous = max(1, survivors // reduction_factor), rung
    return tokens / (trials * schedule.budget)


def ray_asha_fraction(schedule: Schedule, reduction_factor: int, losses: list[list[float]]) -> float:
    """The fraction of ``len(losses) × budget`` tokens Ray's own ASHA bracket, built as
    ``RayExecutor`` builds it (fidelity in units of the smallest rung), spends on trials run one at
    a time in the order given; ``losses[trial][rung]`` is what each trial reports at each rung."""
    stops = ray_asha_stops(schedule, reduction_factor, losses)
    return sum(schedule.budget if stop is None else stop for stop in stops) / (len(losses) * schedule.budget)


def ray_asha_stops(schedule: Schedule, reduction_factor: int, losses: list[list[float]]) -> list[int | None]:
    """The rung at which Ray's own ASHA bracket stops each trial (None: never), trials one at a
    time in the order given; ``losses[trial]`` is what the trial reports at the rungs in turn (a
    shorter list: it ended early, e.g. diverged)."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(1 - 1e-9, schedule.budget // schedule.rungs[0], reduction_factor, 0)
    stops: list[int | None] = []
    for number, curve in enumerate(losses):
        stop = None
        for rung, loss in zip(schedule.rungs, curve):
            if bracket.on_result(SimpleNamespace(trial_id=str(number)), rung / schedule.rungs[0], -loss) \
                    == TrialScheduler.STOP:
                stop = rung
                break
        stops.append(stop)
    return stops


def expected_fraction(schedule: Schedule, trials: int, reduction_factor: int, draws: int = 100) -> float:
    """Mean of :func:`ray_asha_fraction` over random arrival orders when every trial keeps its rank
    at every rung: what ASHA spends when the rungs never mislead it (seeded, so reproducible)."""
    generator = random.Random(0)
    orders = [[[quality] * len(schedule.rungs) for quality in generator.sample(range(trials), trials)]
              for _ in range(draws)]
    return statistics.fmean(ray_asha_fraction(schedule, reduction_factor, order) for order in orders)


def trials_for_goal(schedule: Schedule, reduction_factor: int, most: int = 256) -> int | None:
    """The fewest trials (16, 32, … up to ``most``) whose :func:`expected_fraction` is at most GOAL."""
    trials = 16
    while trials <= most:
        if expected_fraction(schedule, trials, reduction_factor) <= GOAL:
            return trials
        trials *= 2
    return None


def common_budget(tokens_per_param: float, base_params: int, step_tokens: int, reduction_factors: list[int],
                  max_rungs: int) -> int:
    """The budget nearest ``tokens_per_param × base_params`` on which every schedule lands: a whole
    number of steps of the largest batch times ``rf ** max_rungs`` for every reduction factor."""
    unit = step_tokens * math.lcm(*(rf ** max_rungs for rf in reduction_factors))
    return round_to(tokens_per_param * base_params, unit)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--tokens-per-param", type=float, default=20.0,
                        help="nominal budget; moved to the nearest one every schedule lands on")
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--reduction-factors", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--max-rungs", type=int, default=3, help="rungs below the full budget (RayExecutor.max_rungs)")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds 0, 1, …: configurations and training seed")
    parser.add_argument("--max-concurrent", type=int, default=1, help="ASHA trials at once (1: reproducible decisions)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.base_width, args.trials, args.tokens_per_param, args.evaluations = 16, 4, 2.0, 4
        args.max_rungs, args.seeds = 1, 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = Console(width=WIDTH)
    task = LanguageTask(depth=args.depth, head_size=16, seq_len=64, eval_tokens=4096)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="hpogrow-asha-bench-") as folder:
            budget, tokens_per_param = _budget(task, args, Path(folder))
            console.print(f"budget {budget:,} tokens per trial ({tokens_per_param:.3f} tokens/parameter, "
                          f"the nearest to {args.tokens_per_param:g} that every schedule lands on)")
            rows = []
            for seed in range(args.seeds):
                configurations = _configurations(args.trials, seed)
                searches = {rf: _search(task, args, tokens_per_param, seed, rf, configurations, Path(folder), console)
                            for rf in (None, *args.reduction_factors)}
                rows += [_compare(seed, rf, searches[None], searches[rf], args.trials) for rf in args.reduction_factors]
    finally:
        ray.shutdown()

    summary = [_summarise(rf, [row for row in rows if row["reduction_factor"] == rf]) for rf in args.reduction_factors]
    tables = [_rows_table(rows, args, budget, tokens_per_param), _summary_table(summary, args)]
    for table in tables:
        console.print(table)
    notes = _notes(summary, args)
    console.print(notes)
    record = make_record("asha_vs_full", argv, args, modules=("torch", "ray", "optuna", "mup"), budget=budget,
                         tokens_per_param_used=tokens_per_param, rows=rows, summary=summary)
    append_result(args, record, tables, notes, console)
    return record


def _budget(task: LanguageTask, args, folder: Path) -> tuple[int, float]:
    """The common budget and the tokens per parameter that give it."""
    plan = make_plan(task, _config(args, args.tokens_per_param, 0, "none", 2, folder), RayExecutor(scheduler="none"))
    step_tokens = max(plan.space.batch_sizes) * task.tokens_per_example
    budget = common_budget(args.tokens_per_param, plan.growth.base_params, step_tokens, args.reduction_factors,
                           args.max_rungs)
    return budget, budget / plan.growth.base_params


def _config(args, tokens_per_param: float, seed: int, scheduler: str, reduction_factor: int,
            workdir: Path) -> SearchConfig:
    return SearchConfig(base_width=args.base_width, trials=args.trials, tokens_per_param=tokens_per_param,
                        evaluations=args.evaluations, seed=seed, workdir=str(workdir), device="cpu",
                        executor="ray", scheduler=scheduler, reduction_factor=reduction_factor)


def _search(task: LanguageTask, args, tokens_per_param: float, seed: int, reduction_factor: int | None,
            configurations: list[dict], folder: Path, console: Console) -> dict:
    """One search over ``configurations`` (enqueued in order): its schedule and every trial's outcome.

    ``reduction_factor`` None: every trial to the full budget; otherwise ASHA at that factor.
    """
    name = "full" if reduction_factor is None else f"asha-rf{reduction_factor}"
    workdir = folder / f"seed-{seed}" / name
    scheduler = "none" if reduction_factor is None else "asha"
    executor = RayExecutor(scheduler=scheduler, reduction_factor=reduction_factor or 2, max_rungs=args.max_rungs,
                           max_concurrent=None if reduction_factor is None else args.max_concurrent,
                           storage_path=str(workdir / "ray"))
    config = _config(args, tokens_per_param, seed, scheduler, executor.reduction_factor, workdir)
    plan: Plan = make_plan(task, config, executor)
    study = load_or_create_study(open_storage(config.storage_url), plan.base_study, {"bench": name},
                                 make_sampler(seed), executor.pruner(plan.base_tokens))
    for params in configurations:
        study.enqueue_trial(params)
    console.print(f"seed {seed}, {name}: {args.trials} trials, rungs {', '.join(f'{r:,}' for r in plan.schedule.rungs)} tokens")
    executor.run(study, plan.space, args.trials, plan.base_trial())
    trials = [{"config": configurations.index(t.params), "state": t.state.name,
               "loss": t.value if t.state == TrialState.COMPLETE else None,
               "tokens": int(t.user_attrs.get("fidelity_reached", 0))}
              for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]
    return {"budget": plan.schedule.budget, "rungs": list(plan.schedule.rungs), "schedule": plan.schedule,
            "trials": trials}


def _configurations(count: int, seed: int) -> list[dict]:
    """``count`` configurations drawn from the LM space by a seeded random sampler."""
    space = load_space(None, "lm")
    draw = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [draw.ask(space.distributions()).params for _ in range(count)]


def _compare(seed: int, reduction_factor: int, full: dict, asha: dict, trials: int) -> dict:
    """One row: ASHA's tokens against the full search's, and whether its winner is good enough."""
    if full["budget"] != asha["budget"]:
        raise RuntimeError(f"budgets differ: full {full['budget']:,}, ASHA {asha['budget']:,} tokens")
    full_loss = {t["config"]: t["loss"] for t in full["trials"] if t["loss"] is not None}
    asha_loss = {t["config"]: t["loss"] for t in asha["trials"] if t["loss"] is not None}
    best = min(full_loss, key=full_loss.get)
    chosen = min(asha_loss, key=asha_loss.get)
    full_tokens = sum(t["tokens"] for t in full["trials"])
    asha_tokens = sum(t["tokens"] for t in asha["trials"])
    gap = full_loss[chosen] / full_loss[best] - 1
    states = [t["state"] for t in asha["trials"]]
    return {"seed": seed, "reduction_factor": reduction_factor, "rungs": asha["rungs"],
            "full_tokens": full_tokens, "asha_tokens": asha_tokens, "fraction": asha_tokens / full_tokens,
            "floor": floor_fraction(asha["schedule"], trials),
            "halving": halving_fraction(asha["schedule"], trials, reduction_factor),
            "expected": expected_fraction(asha["schedule"], trials, reduction_factor),
            "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
            "full_failed": sum(t["state"] == "FAIL" for t in full["trials"]),
            "full_winner": best, "full_best_loss": full_loss[best], "asha_winner": chosen,
            "asha_winner_loss": asha_loss[chosen], "asha_winner_full_loss": full_loss[chosen], "gap": gap,
            "hit": chosen == best or gap <= WITHIN,
            "max_loss_difference": max(abs(asha_loss[c] - full_loss[c]) for c in asha_loss),
            "full_trials": full["trials"], "asha_trials": asha["trials"]}


def _summarise(reduction_factor: int, rows: list[dict]) -> dict:
    fractions = [row["fraction"] for row in rows]
    schedule = Schedule(rows[0]["rungs"][-1], tuple(rows[0]["rungs"]))
    return {"reduction_factor": reduction_factor, "seeds": len(rows), "hits": sum(row["hit"] for row in rows),
            "fraction_mean": statistics.fmean(fractions), "fraction_min": min(fractions),
            "fraction_max": max(fractions), "rungs": rows[0]["rungs"], "floor": rows[0]["floor"], "halving": rows[0]["halving"],
            "expected": rows[0]["expected"], "trials_for_goal": trials_for_goal(schedule, reduction_factor),
            "goal_met": sum(row["hit"] and row["fraction"] <= GOAL for row in rows)}


def _rows_table(rows: list[dict], args, budget: int, tokens_per_param: float) -> Table:
    table = Table(title=f"ASHA vs full-budget search, embedded LM width {args.base_width} depth {args.depth}: "
                        f"{args.trials} configurations per seed, {budget:,} tokens each ({tokens_per_param:.2f} "
                        f"tokens/param), {args.max_rungs} rungs below the budget")
    for column in ("seed", "rf", "C/P/F", "ASHA tokens", "× full", "floor", "halving", "expected",
                   "full winner (loss)", "ASHA winner (full loss)", "gap", "hit", "max |Δ loss|"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["seed"]), str(row["reduction_factor"]), f"{row['complete']}/{row['pruned']}/{row['failed']}", f"{row['asha_tokens']:,}",
                      f"{row['fraction']:.3f}", f"{row['floor']:.3f}", f"{row['halving']:.3f}",
                      f"{row['expected']:.3f}", f"#{row['full_winner']} ({row['full_best_loss']:.4f})",
                      f"#{row['asha_winner']} ({row['asha_winner_full_loss']:.4f})", f"{row['gap']:+.2%}",
                      "yes" if row["hit"] else "NO", f"{row['max_loss_difference']:.1e}")
    return table


def _summary_table(summary: list[dict], args) -> Table:
    table = Table(title=f"per reduction factor, over {args.seeds} seed(s): goal = a hit at ≤ {GOAL:g}× the tokens")
    for column in ("rf", "rungs (tokens)", "hits", "× full: mean [min, max]", "floor", "halving", "expected",
                   "trials for expected ≤ goal", "hit at ≤ goal"):
        table.add_column(column, justify="right")
    for entry in summary:
        table.add_row(str(entry["reduction_factor"]), " → ".join(f"{r:,}" for r in entry["rungs"]),
                      f"{entry['hits']} of {entry['seeds']}",
                      f"{entry['fraction_mean']:.3f} [{entry['fraction_min']:.3f}, {entry['fraction_max']:.3f}]",
                      f"{entry['floor']:.3f}", f"{entry['halving']:.3f}", f"{entry['expected']:.3f}",
                      str(entry["trials_for_goal"] or "over 256"), f"{entry['goal_met']} of {entry['seeds']}")
    return table


def _notes(summary: list[dict], args) -> str:
    lines = [f"Hit: ASHA's winner is the full search's or within {WITHIN:.0%} of its best full-budget loss. floor: the "
             f"least any ASHA run can spend with {args.trials} trials on these rungs (one trial trains to the budget, "
             "the rest stop at the first rung); halving: synchronous successive halving's spend; expected: Ray's ASHA "
             "bracket's mean spend over 100 random arrival orders when every trial keeps its rank at every rung. "
             f"C/P/F: ASHA trials COMPLETE/PRUNED/FAIL. ASHA trials ran {args.max_concurrent} at a time."]
    for entry in summary:
        reachable = "reachable" if entry["floor"] <= GOAL else "NOT reachable"
        typical = "below" if entry["halving"] <= GOAL else "above"
        lines.append(f"rf {entry['reduction_factor']}: {entry['hits']} of {entry['seeds']} hits at "
                     f"{entry['fraction_mean']:.3f}× the tokens (range {entry['fraction_min']:.3f}–"
                     f"{entry['fraction_max']:.3f}); {GOAL:g}× is {reachable} in principle (floor "
                     f"{entry['floor']:.3f}), successive halving's own spend ({entry['halving']:.3f}) is {typical} it, "
                     f"and ASHA's expected spend with ranks that never change is {entry['expected']:.3f} "
                     + (f"(≤ {GOAL:g} from {entry['trials_for_goal']} trials)." if entry["trials_for_goal"]
                        else "(above it up to 256 trials)."))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
