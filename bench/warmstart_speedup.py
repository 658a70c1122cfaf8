"""Warmstart speedup at g = 2 with SZP: the tokens and FLOPs a grown model saves over scratch.

For each task (embedded LM, Fourier MLP), token budget per parameter and seed: a base model is
trained for ``budget × its parameters`` tokens, grown by shrink–zero-pad–perturb (λ = 0.4) to
about twice the parameters, and trained on the tokens that follow the base's, against μP from
scratch at the target shape on the same tokens, LR and batch (``budget × target parameters``).
Reported per cell (mean ± standard deviation over seeds): the speedup = scratch's budget ÷ the
tokens the warmstarted run needs to reach scratch's final validation loss (= the FLOPs ratio, same
model), the same counting the base's tokens and FLOPs on the warmstarted side, and the final-loss
difference at equal budget (warmstart − scratch; negative: warmstart better).

    python bench/warmstart_speedup.py          # 2 tasks × 3 budgets (2, 8, 32 tokens/param) × 3 seeds (~8 min on 2 quiet cores)
    python bench/warmstart_speedup.py --quick  # smoke size
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record, spread
from _speedups import Setting
from hpogrow.checkpoint import save_checkpoint
from hpogrow.growth import grow_checkpoint, plan_growth
from hpogrow.parametrize import build_model, count_parameters
from hpogrow.runs import run_scratch, run_warmstart
from hpogrow.speedup import compute_speedup
from hpogrow.tasks import FourierTask, LanguageTask
from hpogrow.train import TrainConfig, train


def settings(quick: bool) -> list[Setting]:
    """LM: the ASHA benchmark's winner (width 32, head 16, context 64, LR 2.3e-2, batch 16).
    MLP: residual MLP width 64 on a 1,000-mode Fourier target (10,000 in paper 000 — the target
    costs more than the model on CPU), LR 1e-2 (the best of 3e-3/1e-2/3e-2 at the base), batch 256."""
    if quick:
        return [Setting("lm", LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=512), 16, 2.3e-2, 8),
                Setting("mlp", FourierTask(depth=1, modes=64, eval_examples=256), 16, 1e-2, 64)]
    return [Setting("lm", LanguageTask(depth=2, head_size=16, seq_len=64, eval_tokens=4096), 32, 2.3e-2, 16),
            Setting("mlp", FourierTask(depth=2, modes=1000), 64, 1e-2, 256)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=("lm", "mlp"), default=["lm", "mlp"])
    parser.add_argument("--tokens-per-param", type=float, nargs="+", default=[2.0, 8.0, 32.0],
                        help="token budgets per parameter (base and target alike)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grow-factor", type=float, default=2.0)
    parser.add_argument("--evaluations", type=int, default=16, help="evaluations of each target run")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.tokens_per_param, args.seeds, args.evaluations = [1.0], 2, 4
    console = Console(width=WIDTH)
    rows = []
    for setting in settings(args.quick):
        if setting.label not in args.tasks:
            continue
        for budget in args.tokens_per_param:
            for seed in range(args.seeds):
                console.print(f"{setting.label}: {budget:g} tokens/parameter, seed {seed}")
                with tempfile.TemporaryDirectory(prefix="hpogrow-warmstart-bench-") as folder:
                    rows.append(_one_run(setting, budget, seed, args, Path(folder)))

    cells = _cells(rows)
    summary = _summary_table(cells, args)
    detail = _detail_table(rows)
    console.print(detail)
    console.print(summary)
    notes = ("Speedup > 1: the warmstarted run reached scratch's final validation loss with fewer tokens. Without the "
             "base, the token and FLOP ratios are equal (same model, same tokens). \"reached\": seeds whose "
             "warmstarted run reached scratch's final loss within the budget; means are over those (a run that starts "
             "at or below scratch's final loss has an infinite speedup and is left out of the mean).")
    record = make_record("warmstart_speedup", argv, args, rows=rows, cells=cells)
    append_result(args, record, [detail, summary], notes, console)
    return record


def _one_run(setting: Setting, budget: float, seed: int, args, folder: Path) -> dict:
    """Base → SZP growth → warmstart and scratch at the target; one row of figures."""
    task = setting.task
    base = build_model(task, setting.base_width, setting.base_width, seed)
    base_params = count_parameters(base)
    base_config = TrainConfig(learning_rate=setting.learning_rate, batch_size=setting.batch_size, seed=seed,
                              device="cpu", tokens=round(budget * base_params.total), evaluations=4)
    trained = train(base, task, base_config)
    base_path = save_checkpoint(folder / "base", base, task=task, width=setting.base_width,
                                base_width=setting.base_width, seed=seed, state=trained.state,
                                train_config=base_config)
    plan = plan_growth(task, setting.base_width, args.grow_factor)
    grown = grow_checkpoint(base_path, folder / "grown", target_width=plan.target_width, operator="szp", seed=seed,
                            task=task)
    config = TrainConfig(learning_rate=setting.learning_rate, batch_size=setting.batch_size, seed=seed, device="cpu",
                         tokens=round(budget * plan.target_params), evaluations=args.evaluations)
    warm = run_warmstart(task, grown.path, config, None)
    scratch = run_scratch(task, plan.target_width, setting.base_width, config, trained.state.data_position, None)
    base_tokens = trained.state.tokens_seen
    base_flops = 6.0 * base_params.compute * base_tokens
    speedup = compute_speedup([(e.tokens_seen, e.val_loss) for e in warm.evaluations],
                              [(e.tokens_seen, e.val_loss) for e in scratch.evaluations],
                              warm.compute_params, base_tokens, base_flops)
    return {"task": setting.label, "tokens_per_param": budget, "seed": seed, "base_width": setting.base_width,
            "target_width": plan.target_width, "g": plan.param_ratio, "base_final": trained.final_loss,
            "base_tokens": base_tokens, "target_tokens": config.tokens, "warm_initial": warm.evaluations[0].val_loss,
            "warm_final": warm.final_loss, "scratch_final": scratch.final_loss,
            "final_difference": warm.final_loss - scratch.final_loss, **speedup.as_attrs()}


def _cells(rows: list[dict]) -> list[dict]:
    """Mean and spread over seeds of each (task, budget)."""
    cells = []
    for key in dict.fromkeys((row["task"], row["tokens_per_param"]) for row in rows):
        group = [row for row in rows if (row["task"], row["tokens_per_param"]) == key]
        reached = [row for row in group if row["warmstart_tokens_to_match"] is not None]
        finite = [row for row in reached if row["speedup_tokens"] is not None]  # None: matched at step 0
        cell = {"task": key[0], "tokens_per_param": key[1], "seeds": len(group), "reached": len(reached),
                "g": group[0]["g"], "widths": f"{group[0]['base_width']}→{group[0]['target_width']}",
                "final_difference": spread([row["final_difference"] for row in group])}
        for name in ("speedup_tokens", "speedup_tokens_with_base", "speedup_flops_with_base"):
            cell[name] = spread([row[name] for row in finite]) if finite else None
        cells.append(cell)
    return cells


def _mean_std(value: tuple[float, float] | None, suffix: str = "×", digits: int = 2) -> str:
    return "—" if value is None else f"{value[0]:.{digits}f}{suffix} ± {value[1]:.{digits}f}"


def _summary_table(cells: list[dict], args) -> Table:
    table = Table(title=f"warmstart speedup at g≈{args.grow_factor:g} with SZP (λ 0.4), mean ± std over seeds")
    for column in ("task", "widths", "g", "tokens/param", "reached", "speedup (tokens = FLOPs)",
                   "tokens, with base", "FLOPs, with base", "Δ final loss (warm − scratch)"):
        table.add_column(column, justify="right")
    for cell in cells:
        table.add_row(cell["task"], cell["widths"], f"{cell['g']:.2f}", f"{cell['tokens_per_param']:g}",
                      f"{cell['reached']}/{cell['seeds']}", _mean_std(cell["speedup_tokens"]),
                      _mean_std(cell["speedup_tokens_with_base"]), _mean_std(cell["speedup_flops_with_base"]),
                      _mean_std(cell["final_difference"], "", 4))
    return table


def _detail_table(rows: list[dict]) -> Table:
    table = Table(title="per seed")
    for column in ("task", "tokens/param", "seed", "base final", "warm initial", "warm final", "scratch final",
                   "tokens to match", "speedup", "with base (tokens)", "with base (FLOPs)"):
        table.add_column(column, justify="right")
    for row in rows:
        def ratio(name: str) -> str:
            if row["warmstart_tokens_to_match"] is None:
                return "not reached"
            return "∞ (at start)" if row[name] is None else f"{row[name]:.2f}×"

        table.add_row(row["task"], f"{row['tokens_per_param']:g}", str(row["seed"]), f"{row['base_final']:.4f}",
                      f"{row['warm_initial']:.4f}", f"{row['warm_final']:.4f}", f"{row['scratch_final']:.4f}",
                      "—" if row["warmstart_tokens_to_match"] is None else f"{row['warmstart_tokens_to_match']:,.0f}",
                      ratio("speedup_tokens"), ratio("speedup_tokens_with_base"), ratio("speedup_flops_with_base"))
    return table


if __name__ == "__main__":
    main()
