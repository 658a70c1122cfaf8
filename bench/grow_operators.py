"""Growth operators compared on the embedded LM at the same g ≈ 2 (issue 4's ablation), over seeds.

Per seed a base GPT is trained once; every operator grows it to about twice the parameters (each
plan within 10% of g = 2; width operators and depth operators land on different shapes) and the
grown model trains on the tokens that follow the base's, against μP from scratch at the same
shape, budget, LR and batch. Reported per operator: the speedup over seeds read by
:mod:`hpogrow.speedup` (smoothed curves; seeds that never reach scratch's final loss counted at
their bound; geometric mean with a 95% t-interval), in tokens (= FLOPs: same model on both sides)
and in FLOPs with the base's training added, how many seeds reached scratch's final loss, and the
mean initial and final validation losses.

    python bench/grow_operators.py            # base width 64, 2 tokens/parameter, 3 seeds (~12 min on one core)
    python bench/grow_operators.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import add_common_options, append_result, make_record
from _speedups import interval_cell, pair_speedup
from hpogrow.checkpoint import save_checkpoint
from hpogrow.growth import grow_checkpoint, parse_operators, plan_growth
from hpogrow.growth.plan import FACTOR_TOLERANCE
from hpogrow.parametrize import build_model
from hpogrow.runs import run_scratch, run_warmstart
from hpogrow.speedup import SeedSpeedup, aggregate_speedups
from hpogrow.tasks import LanguageTask
from hpogrow.train import TrainConfig, train

OPERATORS = ("szp", "zero-pad", "clone", "stack", "zero-block", "szp+zero-block")
GROWTH_FACTOR = 2.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--tokens-per-param", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=3.7e-3, help="the default search's winner (μTransfer)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    add_common_options(parser)
    args = parser.parse_args(argv)
    task = LanguageTask(depth=args.depth, head_size=16 if args.quick else 32, seq_len=32 if args.quick else 128,
                        eval_tokens=2048 if args.quick else 16384)
    base_width = 32 if args.quick else args.base_width
    tokens_per_param = 0.5 if args.quick else args.tokens_per_param
    if args.quick:
        args.seeds = 2  # the fewest that give an interval
    console = Console(width=140)
    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as folder:
            rows += _one_seed(task, base_width, tokens_per_param, args, seed, Path(folder), console)
    title = (f"growth operators at g≈{GROWTH_FACTOR:g} on the embedded LM (base width {base_width}, depth {args.depth}, "
             f"{tokens_per_param:g} tokens/param, LR {args.learning_rate:g}, batch {args.batch_size})")
    operators = _aggregate(rows)
    summary, detail = _summary(operators, title), _detail(rows)
    console.print(detail)
    console.print(summary)
    notes = ("Speedup: geometric mean over seeds with a 95% t-interval on log speedups (hpogrow.speedup: Gaussian-"
             "smoothed curves; a seed whose warmstart never reaches scratch's final loss counts at its bound, marked "
             "≤). Tokens = FLOPs without the base (same model and tokens on both sides); \"FLOPs with base\" adds the "
             "base's training (6·N·D, hpogrow's count; attention left out). g: total parameters, target over base.")
    record = make_record("grow_operators", argv, args, rows=rows,
                         operators=[{k: v for k, v in cell.items() if k != "estimate"} for cell in operators])
    append_result(args, record, [detail, summary], notes, console=console)
    return record


def _one_seed(task, base_width, tokens_per_param, args, seed, folder: Path, console) -> list[dict]:
    base = build_model(task, base_width, base_width, seed)
    base_config = TrainConfig(learning_rate=args.learning_rate, batch_size=args.batch_size, seed=seed, device="cpu",
                              tokens=round(tokens_per_param * sum(p.numel() for p in base.parameters())), evaluations=4)
    trained = train(base, task, base_config)
    base_path = save_checkpoint(folder / "base", base, task=task, width=base_width, base_width=base_width, seed=seed,
                                state=trained.state, train_config=base_config)
    base_tokens = trained.state.tokens_seen
    scratch_by_shape, rows = {}, []
    for operator in OPERATORS:
        width_op, depth_op = parse_operators(operator)
        plan = plan_growth(task, base_width, GROWTH_FACTOR, grow_width=width_op is not None,
                           grow_depth=depth_op is not None)
        if abs(plan.param_ratio / GROWTH_FACTOR - 1) > FACTOR_TOLERANCE:
            console.print(f"[yellow]{operator}: g = {plan.param_ratio:.2f} is more than {FACTOR_TOLERANCE:.0%} from "
                          f"{GROWTH_FACTOR:g}[/yellow]")
        shape = f"w{plan.target_width} d{plan.target_depth}"
        target_task = task if plan.target_depth == task.depth else task.with_depth(plan.target_depth)
        config = TrainConfig(learning_rate=args.learning_rate, batch_size=args.batch_size, seed=seed, device="cpu",
                             tokens=round(tokens_per_param * plan.target_params), evaluations=12)
        if shape not in scratch_by_shape:
            console.print(f"seed {seed}: scratch {shape}")
            scratch_by_shape[shape] = run_scratch(target_task, plan.target_width, base_width, config,
                                                  trained.state.data_position, None)
        scratch = scratch_by_shape[shape]
        console.print(f"seed {seed}: {operator} → {shape}")
        grown = grow_checkpoint(base_path, folder / operator, target_width=plan.target_width,
                                target_depth=plan.target_depth, operator=operator, seed=seed, task=task)
        warm = run_warmstart(target_task, grown.path, config, None)
        target = build_model(target_task, plan.target_width, base_width, seed)
        pair = pair_speedup(warm, scratch, target=target, base=base, base_tokens=base_tokens, seed=seed)
        rows.append({"operator": operator, "seed": seed, "shape": shape, "g": plan.param_ratio,
                     "initial": warm.evaluations[0].val_loss, "final": warm.final_loss,
                     "scratch_final": scratch.final_loss, "tokens": config.tokens, **asdict(pair)})
    return rows


def _aggregate(rows: list[dict]) -> list[dict]:
    """Per operator: its seeds' speedups aggregated (:func:`hpogrow.speedup.aggregate_speedups`)."""
    operators = []
    for operator in dict.fromkeys(row["operator"] for row in rows):
        group = [row for row in rows if row["operator"] == operator]
        pairs = [SeedSpeedup(**{name: row[name] for name in SeedSpeedup.__dataclass_fields__ if name in row}) for row in group]
        estimate = aggregate_speedups(pairs)
        operators.append({"operator": operator, "shape": group[0]["shape"], "g": group[0]["g"],
                          "initial": statistics.fmean(row["initial"] for row in group),
                          "final": statistics.fmean(row["final"] for row in group),
                          "scratch_final": statistics.fmean(row["scratch_final"] for row in group),
                          "estimate": estimate, **estimate.as_attrs()})
    return operators


def _summary(operators: list[dict], title: str) -> Table:
    table = Table(title=title + ", over seeds")
    for column in ("operator", "target", "g", "seeds reached", "initial loss", "final loss", "scratch final",
                   "speedup ×, tokens = FLOPs (95% CI)", "FLOPs with base (95% CI)"):
        table.add_column(column, justify="right")
    for cell in operators:
        estimate = cell["estimate"]
        table.add_row(cell["operator"], cell["shape"], f"{cell['g']:.2f}",
                      f"{estimate.seeds_reached}/{estimate.seeds}", f"{cell['initial']:.3f}", f"{cell['final']:.3f}",
                      f"{cell['scratch_final']:.3f}", interval_cell(estimate, "tokens"),
                      interval_cell(estimate, "flops_with_base"))
    return table


def _detail(rows: list[dict]) -> Table:
    table = Table(title="per seed")
    for column in ("operator", "seed", "target", "g", "initial loss", "final loss", "scratch final",
                   "tokens to match", "read", "speedup"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["operator"], str(row["seed"]), row["shape"], f"{row['g']:.2f}", f"{row['initial']:.3f}",
                      f"{row['final']:.3f}", f"{row['scratch_final']:.3f}", f"{row['warmstart_tokens']:,.0f}",
                      row["censoring"], f"{row['tokens']:.2f}×")
    return table


if __name__ == "__main__":
    main()
