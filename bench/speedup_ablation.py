"""Which growth setting pays once the base is counted: a speedup ablation (issue 23, item 4).

``hpogrow search --base-width 64`` grows its winner by ~2× parameters with SZP (λ 0.4, fresh
optimizer, constant learning rate at the base's) and trains it against μP from scratch at the
target width on the same tokens. Measured on the default run: 1.39× fewer tokens than scratch, but
1.06× in FLOPs once the base's training is counted. This bench changes one factor at a time from
that default, on ONE base trained as the search trains its winner:

- the plan is the search's own (:func:`hpogrow.search.plan.make_plan` for ``--base-width 64``,
  1 token/parameter): its base budget, evaluation points, target width and ``target_tokens``;
- the base is the default LM at width 64, learning rate 0.0166, batch 16 (the best of a dense grid
  at that width: bench/RESULTS.md ``sampler_compare``, ``halving_replay``), run by the search's
  own :class:`hpogrow.runs.BaseTrial`;
- seed ``k`` is the perturbation seed and the training seed of every arm of that seed, and every
  arm of seed ``k`` reads pair ``k``'s fresh segment after the base's tokens, as
  :mod:`hpogrow.search.target` does (``base position + k × pair_examples``);
- arms (:data:`ARMS`): the default; λ 0 (the grown model is μP from scratch with the
  perturbation's seed: a control) and λ 0.8; Adam's moments carried through growth; WSD for both
  sides (against a scratch run with WSD too: like with like); the warmstart's learning rate × 0.5
  and × 2 against the default scratch.

Per arm, over seeds (:mod:`hpogrow.speedup`: smoothed curves, censored seeds counted at their
bound, geometric mean with a 95% t-interval): the speedup in tokens, in FLOPs (6·N·D) and in
FLOPs with the base's training counted, and the final-loss gap to its scratch run with its paired
eval standard error (:func:`hpogrow.runs.paired_eval_gap`). The goal of issue 23: FLOPs with the
base ≥ 1.3× with the interval's low end ≥ 1.0.

Runs go seed-major (every arm of seed 0, then seed 1, …) so that load from other work hits the
arms alike, and each seed's rows are appended to ``--rows`` as soon as its arms finish: a run cut
short still leaves complete seeds, which ``--from-rows`` aggregates without training.

    python bench/speedup_ablation.py --workers 2 --rows studies/ablation-rows.jsonl    # 3 seeds, 9 runs each
    python bench/speedup_ablation.py --tokens-per-param 20 --data synthetic --base-width 32 --head-size 16 \
        --learning-rate 0.01 --workers 2 --seeds 6  # the 20 t/p regime: 32→48 (×1.91), 1.7M tokens per arm
    python bench/speedup_ablation.py --from-rows studies/ablation-rows.jsonl            # aggregate only
    python bench/speedup_ablation.py --quick                                            # smoke size
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import itertools
import json
import math
import multiprocessing
import statistics
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record, spread
from _speedups import interval_cell, pair_speedup
from hpogrow.growth import grow_checkpoint
from hpogrow.parametrize import build_model
from hpogrow.runs import RunOutcome, paired_eval_gap, run_scratch, run_warmstart
from hpogrow.search.config import SearchConfig
from hpogrow.search.plan import Plan, make_plan
from hpogrow.speedup import SeedSpeedup, aggregate_speedups
from hpogrow.tasks import LanguageTask

GOAL, GOAL_LOW = 1.3, 1.0
"""Issue 23's goal: FLOPs speedup with the base's cost ≥ 1.3×, its interval's low end ≥ 1.0."""


@dataclass(frozen=True)
class Arm:
    """One run per seed: scratch (``shrink is None``) or a warmstart against the scratch arm ``against``."""

    name: str
    change: str
    shrink: float | None = 0.4
    carry_optimizer: bool = False
    schedule: str = "constant"
    lr_factor: float = 1.0
    against: str = "scratch"

    @property
    def scratch(self) -> bool:
        return self.shrink is None


ARMS = (
    Arm("scratch", "μP, constant lr", shrink=None),
    Arm("scratch wsd", "μP, WSD", shrink=None, schedule="wsd"),
    Arm("default", "λ 0.4, fresh Adam, const"),
    Arm("λ 0", "λ 0 (= scratch: control)", shrink=0.0),
    Arm("λ 0.8", "λ 0.8", shrink=0.8),
    Arm("carry moments", "Adam's moments carried", carry_optimizer=True),
    Arm("wsd", "WSD, vs scratch wsd", schedule="wsd", against="scratch wsd"),
    Arm("lr ×0.5", "warmstart lr × 0.5", lr_factor=0.5),
    Arm("lr ×2", "warmstart lr × 2", lr_factor=2.0),
    Arm("lr ×0.25", "warmstart lr × 0.25", lr_factor=0.25),
    Arm("λ 0.8, lr ×0.5", "λ 0.8 and lr × 0.5", shrink=0.8, lr_factor=0.5),
    Arm("scratch lr ×0.5", "μP, lr × 0.5", shrink=None, lr_factor=0.5),
    Arm("lr ×0.5 both", "lr × 0.5, vs scratch lr × 0.5", lr_factor=0.5, against="scratch lr ×0.5"),
    Arm("lr ×4", "warmstart lr × 4", lr_factor=4.0),
    Arm("scratch lr ×2", "μP, lr × 2", shrink=None, lr_factor=2.0),
    Arm("lr ×2 both", "lr × 2, vs scratch lr × 2", lr_factor=2.0, against="scratch lr ×2"),
    Arm("scratch lr ×4", "μP, lr × 4", shrink=None, lr_factor=4.0),
    Arm("lr ×4 both", "lr × 4, vs scratch lr × 4", lr_factor=4.0, against="scratch lr ×4"),
)
ARM_NAMES = [arm.name for arm in ARMS]
DEFAULT_ARMS = ARM_NAMES[:9]
"""One factor at a time. Follow-ups (``--arms``): below lr × 0.5, the two best combined, and lr × 0.5
against scratch at lr × 0.5 too (is the gain the warmstart's, or scratch's lr too high?); at 20
tokens/param, where lr × 2 won, lr × 4, and lr × 2 and × 4 against scratch at the same (or scratch's lr too low?)."""


@dataclass(frozen=True)
class Job:
    """One arm of one seed, as a worker process receives it."""

    arm: Arm
    seed: int
    plan: Plan
    base_checkpoint: Path
    learning_rate: float
    batch_size: int
    data_position: int
    folder: Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arms", nargs="+", choices=ARM_NAMES, default=DEFAULT_ARMS,
                        help="arms to run (a warmstart arm brings its scratch arm)")
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--target-width", type=int, default=None,
                        help="target width (default: the plan's, ~2× parameters: 96 from 64)")
    parser.add_argument("--learning-rate", type=float, default=0.0166, help="the base's (and every arm's) lr")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens-per-param", type=float, default=1.0, help="the search's budget (base and target)")
    parser.add_argument("--head-size", type=int, default=32, help="LanguageTask head size (the width step)")
    parser.add_argument("--data", default=None, help="LanguageTask data: default CPython source, or 'synthetic'")
    parser.add_argument("--workers", type=int, default=1, help="processes in parallel (one torch thread each)")
    parser.add_argument("--rows", default=None, help="JSON lines file each finished seed's rows are appended to")
    parser.add_argument("--from-rows", default=None, help="aggregate the rows of this file; train nothing")
    parser.add_argument("--workdir", default=None, help="checkpoints (default: a temporary folder)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    console = Console(width=WIDTH)
    if args.from_rows:
        rows = [json.loads(line) for line in Path(args.from_rows).read_text().splitlines() if line.strip()]
        setup = rows[0].get("setup", {}) if rows else {}
    else:
        rows, setup = _run(args, console)
    cells = _cells(rows)
    tables = [_seed_table(rows), _cell_table(cells, setup)]
    for table in tables:
        console.print(table)
    record = make_record("speedup_ablation", argv, args, setup=setup, rows=rows,
                         cells=[{k: v for k, v in cell.items() if k != "estimate"} for cell in cells])
    append_result(args, record, tables, _notes(cells), console)
    return record


def _arms(names: list[str]) -> list[Arm]:
    """The named arms and the scratch arms they are measured against, scratch first."""
    chosen = {arm.name for arm in ARMS if arm.name in names}
    chosen |= {arm.against for arm in ARMS if arm.name in chosen and not arm.scratch}
    return sorted((arm for arm in ARMS if arm.name in chosen), key=lambda arm: not arm.scratch)


def _task(args) -> LanguageTask:
    if args.quick:
        return LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=1024, data=args.data)
    return LanguageTask(head_size=args.head_size, data=args.data)


def _run(args, console: Console) -> tuple[list[dict], dict]:
    """Base once, then every arm of every seed (seed-major); each seed's rows appended to ``--rows``."""
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.base_width, args.learning_rate, args.batch_size = 2, 16, 1e-2, 8
    with tempfile.TemporaryDirectory(prefix="hpogrow-ablation-") as scratch_dir:
        workdir = Path(args.workdir or scratch_dir).resolve()
        task = _task(args)
        config = SearchConfig(base_width=args.base_width, executor="local", scheduler="none", workdir=str(workdir),
                              tokens_per_param=args.tokens_per_param, seeds=args.seeds, device="cpu",
                              target_width=args.target_width,
                              evaluations=4 if args.quick else 16)
        plan = make_plan(task, config)
        growth = plan.growth
        params = {"learning_rate": args.learning_rate, "batch_size": args.batch_size}
        base = plan.base_trial().run(params, number=0)
        setup = {"task": task.describe(), "base_width": growth.base_width, "target_width": growth.target_width,
                 "param_ratio": growth.param_ratio, "base_tokens": base.state.tokens_seen,
                 "target_tokens": plan.target_tokens, "tokens_per_param": args.tokens_per_param,
                 "base_final": base.final_loss, "base_se": base.extra.get("val_loss_se"), **params}
        console.print(f"base: width {growth.base_width}, {base.state.tokens_seen:,} tokens, final loss "
                      f"{base.final_loss:.4f}; target width {growth.target_width} (×{growth.param_ratio:.2f} parameters), "
                      f"{plan.target_tokens:,} tokens per arm")
        arms = _arms(args.arms)
        jobs = [Job(arm, seed, plan, base.checkpoint, args.learning_rate, args.batch_size,
                    base.state.data_position + seed * plan.supply.budget.pair_examples, workdir / f"seed{seed}")
                for seed in range(args.seeds) for arm in arms]
        base_model = build_model(task, growth.base_width, growth.base_width, 0)
        target_model = build_model(task, growth.target_width, growth.base_width, 0)
        rows: list[dict] = []
        with contextlib.ExitStack() as stack:
            if args.workers > 1:  # seed-major: the pool takes the jobs in order and yields them in order
                context = multiprocessing.get_context("spawn")
                pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
                    args.workers, mp_context=context, initializer=_one_thread))
                results = pool.map(_train_arm, jobs)
            else:
                results = map(_train_arm, jobs)
            for seed, seed_jobs in itertools.groupby(jobs, key=lambda job: job.seed):
                outcomes = {job.arm.name: outcome for job, outcome in zip(seed_jobs, results)}
                seed_rows = [_row(arm, seed, outcomes, task, base_model, target_model, base.state.tokens_seen, setup)
                             for arm in arms if not arm.scratch]
                rows += seed_rows
                if args.rows:
                    with Path(args.rows).open("a") as handle:
                        handle.writelines(json.dumps(row) + "\n" for row in seed_rows)
                console.print(f"seed {seed}: " + ", ".join(
                    f"{row['arm']} {row['tokens']:.2f}×/{row['flops_with_base']:.2f}× ({row['censoring']})"
                    for row in seed_rows))
    return rows, setup


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _train_arm(job: Job) -> RunOutcome:
    """One arm of one seed: grow (warmstart arms) and train at the target for the plan's target tokens."""
    plan, arm, growth = job.plan, job.arm, job.plan.growth
    config = replace(plan.template, learning_rate=job.learning_rate * arm.lr_factor, batch_size=job.batch_size,
                     tokens=plan.target_tokens, eval_tokens=(), seed=job.seed, schedule=arm.schedule)
    slug = arm.name.replace(" ", "-").replace("×", "x")
    if arm.scratch:
        return run_scratch(plan.task, growth.target_width, growth.base_width, config, job.data_position,
                           job.folder / slug)
    grown = grow_checkpoint(job.base_checkpoint, job.folder / f"grown-{slug}", target_width=growth.target_width,
                            operator=plan.config.grow_op, shrink=arm.shrink, noise_scale=plan.config.noise_scale,
                            seed=job.seed, carry_optimizer=arm.carry_optimizer, task=plan.task)
    return run_warmstart(plan.task, grown.path, config, job.folder / slug, data_position=job.data_position)


def _row(arm: Arm, seed: int, outcomes: dict[str, RunOutcome], task, base_model, target_model, base_tokens: int,
         setup: dict) -> dict:
    """A warmstart arm of one seed against its scratch arm: speedups, final losses, the paired gap."""
    warm, scratch = outcomes[arm.name], outcomes[arm.against]
    pair = pair_speedup(warm, scratch, target=target_model, base=base_model, base_tokens=base_tokens, seed=seed)
    gap, gap_se = paired_eval_gap(task, warm.checkpoint, scratch.checkpoint, "cpu")
    return {"arm": arm.name, "against": arm.against, "warm_initial": warm.evaluations[0].val_loss,
            "warm_final": warm.final_loss, "scratch_final": scratch.final_loss, "final_gap": gap, "gap_se": gap_se,
            "warm_se": warm.extra.get("val_loss_se"), "scratch_se": scratch.extra.get("val_loss_se"),
            "setup": setup, **asdict(pair)}


def _cells(rows: list[dict]) -> list[dict]:
    """Per arm: its seeds aggregated by :func:`hpogrow.speedup.aggregate_speedups`, the goal checked."""
    cells = []
    for name in [arm.name for arm in ARMS if any(row["arm"] == arm.name for row in rows)]:
        group = [row for row in rows if row["arm"] == name]
        estimate = aggregate_speedups([SeedSpeedup(**{key: row[key] for key in SeedSpeedup.__dataclass_fields__})
                                       for row in group])
        interval = estimate.flops_with_base_ci
        cells.append({"arm": name, "seeds": len(group), "final_gap": spread([row["final_gap"] for row in group]),
                      "gap_se": statistics.fmean(row["gap_se"] for row in group),
                      "reached": sum(row["censoring"] == "reached" for row in group),
                      "meets_goal": bool(estimate.flops_with_base >= GOAL and interval is not None
                                         and interval[0] >= GOAL_LOW),
                      "estimate": estimate, **estimate.as_attrs()})
    return cells


def _seed_table(rows: list[dict]) -> Table:
    table = Table(title="speedup ablation, per seed: warmstart arm against its scratch arm (same seed, same tokens)")
    for column in ("arm", "seed", "warm start→final", "scratch final", "gap (paired se)", "tokens", "FLOPs + base",
                   "censoring"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["arm"], str(row["seed"]), f"{row['warm_initial']:.3f}→{row['warm_final']:.4f}",
                      f"{row['scratch_final']:.4f}", f"{row['final_gap']:+.4f} ({row['gap_se']:.4f})",
                      f"{row['tokens']:.2f}", f"{row['flops_with_base']:.2f}", row["censoring"])
    return table


def _cell_table(cells: list[dict], setup: dict) -> Table:
    table = Table(title=f"speedup ablation: {setup.get('base_width')}→{setup.get('target_width')} "
                        f"(×{setup.get('param_ratio', math.nan):.2f} parameters), {setup.get('target_tokens', 0):,} "
                        f"tokens per arm; speedup ×, geometric mean over seeds (95% CI); goal: FLOPs + base ≥ {GOAL} "
                        f"with low end ≥ {GOAL_LOW}")
    for column in ("arm", "change", "seeds", "reached", "tokens = FLOPs", "tokens + base", "FLOPs + base",
                   "final gap (sd)", "paired se", "goal"):
        table.add_column(column, justify="right")
    changes = {arm.name: arm.change for arm in ARMS}
    for cell in cells:
        estimate = cell["estimate"]
        gap, sd = cell["final_gap"]
        table.add_row(cell["arm"], changes[cell["arm"]], str(cell["seeds"]), f"{cell['reached']}/{cell['seeds']}",
                      interval_cell(estimate, "tokens"), interval_cell(estimate, "tokens_with_base"),
                      interval_cell(estimate, "flops_with_base"), f"{gap:+.4f} ({sd:.4f})", f"{cell['gap_se']:.4f}",
                      "yes" if cell["meets_goal"] else "no")
    return table


def _notes(cells: list[dict]) -> str:
    if not cells:
        return "No seed finished."
    best = max(cells, key=lambda cell: cell["estimate"].flops_with_base)
    met = [cell["arm"] for cell in cells if cell["meets_goal"]]
    return (f"Best arm in FLOPs with the base's cost: {best['arm']} at {interval_cell(best['estimate'], 'flops_with_base')}. "
            + (f"Meeting the goal (≥ {GOAL}×, low end ≥ {GOAL_LOW}): {', '.join(met)}." if met else
               f"No arm meets the goal (≥ {GOAL}×, low end ≥ {GOAL_LOW})."))


if __name__ == "__main__":
    main()
