"""Growth operators compared on the embedded LM at g ≈ 2 (issue 4's ablation).

A base GPT is trained once; every operator grows it to about twice the parameters and the grown
model trains on the tokens that follow the base's, against μP from scratch at the same shape and
budget. Reported per operator: initial and final validation loss, tokens the warmstarted run
needs to reach scratch's final loss, and the speedup (scratch tokens / those tokens).

    python bench/grow_operators.py            # base width 64, 2 tokens/parameter, 1 seed (~4 min on 2 cores)
    python bench/grow_operators.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import add_common_options, append_result, make_record
from hpogrow.checkpoint import save_checkpoint
from hpogrow.growth import grow_checkpoint, plan_growth
from hpogrow.growth import parse_operators
from hpogrow.parametrize import build_model
from hpogrow.runs import run_scratch, run_warmstart
from hpogrow.speedup import compute_speedup
from hpogrow.tasks import LanguageTask
from hpogrow.train import TrainConfig, train

OPERATORS = ("szp", "zero-pad", "clone", "stack", "zero-block", "szp+zero-block")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--tokens-per-param", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=3.7e-3, help="the default search's winner (μTransfer)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=1)
    add_common_options(parser)
    args = parser.parse_args(argv)
    task = LanguageTask(depth=args.depth, head_size=16 if args.quick else 32, seq_len=32 if args.quick else 128,
                        eval_tokens=2048 if args.quick else 16384)
    base_width = 32 if args.quick else args.base_width
    tokens_per_param = 0.5 if args.quick else args.tokens_per_param
    console = Console(width=140)
    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as folder:
            rows += _one_seed(task, base_width, tokens_per_param, args, seed, Path(folder), console)
    table = Table(title=f"growth operators at g≈2 on the embedded LM (base width {base_width}, depth {args.depth}, "
                        f"{tokens_per_param:g} tokens/param, {args.seeds} seed(s))")
    for column in ("operator", "seed", "target", "g", "initial loss", "final loss", "scratch final", "tokens to match", "speedup"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["operator"], str(row["seed"]), row["shape"], f"{row['g']:.2f}", f"{row['initial']:.3f}",
                      f"{row['final']:.3f}", f"{row['scratch_final']:.3f}",
                      "—" if row["tokens_to_match"] is None else f"{row['tokens_to_match']:,.0f}",
                      "not reached" if row["speedup"] is None else f"{row['speedup']:.2f}×")
    console.print(table)
    record = make_record("grow_operators", argv, args, rows=rows)
    append_result(args, record, [table], console=console)
    return record


def _one_seed(task, base_width, tokens_per_param, args, seed, folder: Path, console) -> list[dict]:
    base = build_model(task, base_width, base_width, seed)
    base_config = TrainConfig(learning_rate=args.learning_rate, batch_size=args.batch_size, seed=seed, device="cpu",
                              tokens=round(tokens_per_param * sum(p.numel() for p in base.parameters())), evaluations=4)
    trained = train(base, task, base_config)
    base_path = save_checkpoint(folder / "base", base, task=task, width=base_width, base_width=base_width, seed=seed,
                                state=trained.state, train_config=base_config)
    scratch_by_shape, rows = {}, []
    for operator in OPERATORS:
        width_op, depth_op = parse_operators(operator)
        plan = plan_growth(task, base_width, 2.0, grow_width=width_op is not None, grow_depth=depth_op is not None)
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
        speedup = compute_speedup([(e.tokens_seen, e.val_loss) for e in warm.evaluations],
                                  [(e.tokens_seen, e.val_loss) for e in scratch.evaluations],
                                  warm.compute_params, trained.state.tokens_seen, 0.0)
        rows.append({"operator": operator, "seed": seed, "shape": shape, "g": plan.param_ratio,
                     "initial": warm.evaluations[0].val_loss, "final": warm.final_loss,
                     "scratch_final": scratch.final_loss, "tokens_to_match": speedup.warmstart_tokens_to_match,
                     "speedup": speedup.tokens, "tokens": config.tokens})
    return rows


if __name__ == "__main__":
    main()
