"""Growth-factor sweep: paper 000's claims measured (issue 12, item 6).

Paper 000 claims that growing by g = 2 (in parameters) is the most reliable, that beyond an upper
bound on g training from scratch is cheaper, and that gains are largest below 20 tokens per
parameter and shrink as the budget grows. This benchmark measures each claim on the Fourier MLP
and the embedded LM (``hpogrow.tasks``), tiny models on CPU:

- **the sweep**: for each task, budget (tokens per parameter, base and target alike) and seed, a
  base is trained once at width 32 for ``budget × its parameters`` tokens; for each growth factor
  it is grown with SZP (λ = 0.4, ``hpogrow.growth.grow_checkpoint``) to the width whose total
  parameter count is closest to ``g ×`` the base's (``hpogrow.growth.plan_growth``: the LM's widths
  step by its head size, 8, the MLP's by 1; the g reached is reported), and trained for
  ``budget × target parameters`` tokens on the tokens after the base's, against μP from scratch at
  the same width, LR, batch and tokens (μTransfer: one LR and batch for every width), at 2 and 4
  tokens per parameter (the LM at g = 8 and 8 tokens per parameter alone would cost about as much
  as the rest of the sweep on a shared 2-core machine);
- **the budget trend**: the speedup at g ≈ 2 at 2, 8 and 20 tokens per parameter.

Each cell aggregates its seeds with :mod:`hpogrow.speedup` (Gaussian-smoothed curves; a seed whose
warmstart never reaches scratch's final loss counts at its bound, never dropped; geometric mean
with a 95% t-interval on log speedups): the speedup in tokens (= in FLOPs: same model and tokens
on both sides) and, with the base's training added to the warmstarted side, in tokens and in FLOPs
(6·N·D, each model at its own size: the package's convention, :func:`hpogrow.throughput.training_flops`). The upper bound on g is where the
with-base FLOPs interval lies wholly below 1. The eval set's standard error (over its units: LM
windows, MLP examples; recorded with each run as ``val_loss_se``) is printed beside the final-loss
gap, with the gap's own paired error (:func:`hpogrow.runs.paired_eval_gap`). Results recorded at
840d216 used 64 groups of held-out examples instead of units, which gives larger errors.

    python bench/growth_factor_sweep.py --workers 2   # 2 tasks × (5 g × budgets 2, 4 + g=2 at 8, 20) × 3 seeds (~15 CPU-minutes)
    python bench/growth_factor_sweep.py --quick       # smoke size
"""

from __future__ import annotations

import argparse
import math
import concurrent.futures
import multiprocessing
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record, should_record, spread
from _speedups import Setting, interval_cell, pair_speedup
from hpogrow.checkpoint import load_model, read_checkpoint, save_checkpoint
from hpogrow.growth import grow_checkpoint, plan_growth
from hpogrow.parametrize import build_model, count_parameters
from hpogrow.runs import paired_eval_gap, run_scratch, run_warmstart
from hpogrow.speedup import SeedSpeedup, SpeedupEstimate, aggregate_speedups
from hpogrow.tasks import FourierTask, LanguageTask
from hpogrow.train import TrainConfig, train

REFERENCE_FACTOR = 2.0
"""The growth factor of the budget trend (paper 000's most reliable one)."""
PLOT_FOLDER = "plots"
"""PNGs go to this folder beside the results file."""


@dataclass(frozen=True)
class Job:
    """One base (task, budget, seed) and the growth factors grown from it."""

    label: str
    budget: float
    seed: int
    factors: tuple[float, ...]
    quick: bool
    evaluations: int


def settings(quick: bool) -> dict[str, Setting]:
    """LM: GPT width 32, depth 2, head size 8, context 32, 16,384 eval tokens; LR 1e-2 (best of
    5e-3, 1e-2, 2.3e-2, 5e-2 at the base, 8 tokens/param, batch 16), batch 32 sequences (1,024 tokens a
    step: at these widths a step's cost is mostly per-step overhead, so 32 halves the sweep's time). MLP: residual MLP
    width 32, depth 2, 1,000 Fourier modes (10,000 in paper 000: on CPU the target costs more than
    the model), 8,192 eval examples; LR 1e-2 (best of 3e-3, 1e-2, 3e-2), batch 64."""
    if quick:
        return {"lm": Setting("lm", LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=1024), 16, 1e-2, 8),
                "mlp": Setting("mlp", FourierTask(depth=1, modes=64, eval_examples=512), 16, 1e-2, 32)}
    return {"lm": Setting("lm", LanguageTask(depth=2, head_size=8, seq_len=32, eval_tokens=16384), 32, 1e-2, 32),
            "mlp": Setting("mlp", FourierTask(depth=2, modes=1000, eval_examples=8192), 32, 1e-2, 64)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=("lm", "mlp"), default=["lm", "mlp"])
    parser.add_argument("--factors", type=float, nargs="+", default=[1.5, 2.0, 3.0, 4.0, 8.0],
                        help="growth factors g (total parameters, target over base)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[2.0, 4.0],
                        help="tokens per parameter of the g sweep (base and target alike)")
    parser.add_argument("--trend-budgets", type=float, nargs="+", default=[2.0, 8.0, 20.0],
                        help=f"tokens per parameter of the budget trend at g = {REFERENCE_FACTOR:g}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=16, help="evaluations of each target run")
    parser.add_argument("--workers", type=int, default=1, help="processes in parallel (one torch thread each)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.factors, args.budgets, args.trend_budgets, args.seeds, args.evaluations = [2.0, 4.0], [1.0], [1.0, 2.0], 2, 8
    console = Console(width=WIDTH)
    rows = _run_jobs(_jobs(args), args.workers, console)
    cells = _cells(rows)
    sweep = [cell for cell in cells if cell["budget"] in args.budgets]
    trend = [cell for cell in cells if cell["factor"] == REFERENCE_FACTOR and cell["budget"] in args.trend_budgets]
    bounds = _upper_bounds(sweep)
    tables = [_cell_table(sweep, "growth-factor sweep: speedup of SZP growth (λ 0.4) against scratch, by g"),
              _cell_table(trend, f"growth-factor sweep: speedup at g≈{REFERENCE_FACTOR:g} by budget"),
              _bound_table(bounds)]
    for table in (_seed_table(rows), *tables):
        console.print(table)
    plots = _plots(args, sweep, trend) if should_record(args) else []
    notes = _notes(args, plots)
    record = make_record("growth_factor_sweep", argv, args, rows=rows,
                         cells=[{k: v for k, v in cell.items() if k != "estimate"} for cell in cells],
                         upper_bounds=bounds, plots=[str(path) for path in plots])
    append_result(args, record, tables, notes, console)
    return record


def _jobs(args) -> list[Job]:
    """One job per (task, budget, seed); the sweep's budgets grow every factor, the trend's only g = 2.
    The longest jobs (LM, large budgets) come first so that parallel workers finish together."""
    jobs = []
    for label in args.tasks:
        for budget in sorted(set(args.budgets) | set(args.trend_budgets), reverse=True):
            factors = tuple(args.factors) if budget in args.budgets else ()
            if budget in args.trend_budgets and REFERENCE_FACTOR not in factors:
                factors += (REFERENCE_FACTOR,)
            cost = budget * sum(factor ** 2 for factor in factors)  # tokens ∝ g, time per token ∝ g
            jobs += [(cost * (10 if label == "lm" else 1), Job(label, budget, seed, factors, args.quick, args.evaluations))
                     for seed in range(args.seeds)]
    return [job for _, job in sorted(jobs, key=lambda pair: -pair[0])]


def _run_jobs(jobs: list[Job], workers: int, console: Console) -> list[dict]:
    """Every job's rows, in job order; in this process when ``workers`` is 1."""
    if workers <= 1:
        return [row for job in jobs for row in _announce(job, console, _run_job(job))]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
        futures = [pool.submit(_run_job, job) for job in jobs]
        return [row for job, future in zip(jobs, futures) for row in _announce(job, console, future.result())]


def _announce(job: Job, console: Console, rows: list[dict]) -> list[dict]:
    console.print(f"{job.label}: {job.budget:g} tokens/param, seed {job.seed}: "
                  + ", ".join(f"g {row['g']:.2f} {row['tokens']:.2f}× ({row['censoring']})" for row in rows))
    return rows


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _run_job(job: Job) -> list[dict]:
    """Base → for each g: SZP growth, warmstart and scratch at the target; one row per g."""
    setting = settings(job.quick)[job.label]
    task, base_width = setting.task, setting.base_width
    with tempfile.TemporaryDirectory(prefix="hpogrow-gsweep-") as name:
        folder = Path(name)
        base = build_model(task, base_width, base_width, job.seed)
        base_params = count_parameters(base).total
        base_config = TrainConfig(learning_rate=setting.learning_rate, batch_size=setting.batch_size, seed=job.seed,
                                  device="cpu", tokens=round(job.budget * base_params), evaluations=4)
        trained = train(base, task, base_config)
        base_path = save_checkpoint(folder / "base", base, task=task, width=base_width, base_width=base_width,
                                    seed=job.seed, state=trained.state, train_config=base_config)
        base_tokens = trained.state.tokens_seen
        rows = []
        for factor in job.factors:
            plan = plan_growth(task, base_width, factor)
            grown = grow_checkpoint(base_path, folder / f"grown-{factor:g}", target_width=plan.target_width,
                                    operator="szp", shrink=0.4, seed=job.seed, task=task)
            config = TrainConfig(learning_rate=setting.learning_rate, batch_size=setting.batch_size, seed=job.seed,
                                 device="cpu", tokens=round(job.budget * plan.target_params),
                                 evaluations=job.evaluations)
            warm = run_warmstart(task, grown.path, config, folder / f"warm-{factor:g}")
            scratch = run_scratch(task, plan.target_width, base_width, config, trained.state.data_position,
                                  folder / f"scratch-{factor:g}")
            scratch_model, _ = load_model(read_checkpoint(scratch.checkpoint), task)
            pair = pair_speedup(warm, scratch, target=scratch_model, base=base, base_tokens=base_tokens, seed=job.seed)
            warm_se, scratch_se = warm.extra["val_loss_se"], scratch.extra["val_loss_se"]
            gap, gap_se = paired_eval_gap(task, warm.checkpoint, scratch.checkpoint, "cpu")
            rows.append({"task": job.label, "budget": job.budget, "factor": factor, "g": plan.param_ratio,
                         "base_width": base_width, "target_width": plan.target_width, "base_params": base_params,
                         "target_params": plan.target_params, "base_final": trained.final_loss,
                         "warm_initial": warm.evaluations[0].val_loss, "warm_final": warm.final_loss,
                         "scratch_final": scratch.final_loss, "final_gap": gap, "warm_se": warm_se,
                         "scratch_se": scratch_se, "gap_se": gap_se, "gap_in_paired_se": abs(gap) / gap_se,
                         "gap_in_se": abs(gap) / math.hypot(warm_se, scratch_se),
                         **asdict(pair)})
    return rows


def _cells(rows: list[dict]) -> list[dict]:
    """Per (task, budget, factor): the seeds aggregated by :func:`hpogrow.speedup.aggregate_speedups`."""
    cells = []
    for key in dict.fromkeys((row["task"], row["budget"], row["factor"]) for row in rows):
        group = [row for row in rows if (row["task"], row["budget"], row["factor"]) == key]
        estimate = aggregate_speedups([SeedSpeedup(**{name: row[name] for name in SeedSpeedup.__dataclass_fields__ if name in row})
                                       for row in group])
        cells.append({"task": key[0], "budget": key[1], "factor": key[2], "g": group[0]["g"],
                      "widths": f"{group[0]['base_width']}→{group[0]['target_width']}",
                      "final_gap": spread([row["final_gap"] for row in group]),
                      "eval_se": statistics.fmean(max(row["warm_se"], row["scratch_se"]) for row in group),
                      "gap_se": statistics.fmean(row["gap_se"] for row in group),
                      "gap_in_paired_se": statistics.fmean(row["gap_in_paired_se"] for row in group),
                      "estimate": estimate, **estimate.as_attrs()})
    return sorted(cells, key=lambda cell: (cell["task"], cell["budget"], cell["factor"]))


def _upper_bounds(sweep: list[dict]) -> list[dict]:
    """Per (task, budget): where growth stops paying in FLOPs with the base's cost included.

    Each g gets a verdict from its with-base FLOPs interval: ``pays`` (wholly above 1), ``scratch``
    (wholly below 1) or ``open`` (it contains 1). ``pays_up_to``: the largest g that pays;
    ``upper_bound``: the smallest g above every g that pays whose verdict is ``scratch`` (the measured
    upper bound: from there on scratch is cheaper). Small g can be ``scratch`` too, for another
    reason: the base's own cost, about 1/g² of scratch's FLOPs at equal tokens per parameter, is
    largest there. ``None``: no such g in the sweep.
    """
    bounds = []
    for key in dict.fromkeys((cell["task"], cell["budget"]) for cell in sweep):
        group = sorted((cell for cell in sweep if (cell["task"], cell["budget"]) == key), key=lambda cell: cell["g"])
        verdicts = {cell["factor"]: _verdict(cell["speedup_flops_with_base_ci"]) for cell in group}
        reached = {cell["factor"]: cell["g"] for cell in group}
        paying = [factor for factor, verdict in verdicts.items() if verdict == "pays"]
        above = [factor for factor, verdict in verdicts.items()
                 if verdict == "scratch" and factor > max(paying, default=0.0)]
        bounds.append({"task": key[0], "budget": key[1], "verdicts": verdicts,
                       "pays_up_to": reached[max(paying)] if paying else None,
                       "upper_bound": reached[min(above)] if above else None})
    return bounds


def _verdict(interval: list[float] | None) -> str:
    if interval is None:
        return "no interval"
    return "pays" if interval[0] > 1 else ("scratch" if interval[1] < 1 else "open")


def _cell_table(cells: list[dict], title: str) -> Table:
    table = Table(title=title + "; speedup ×, geometric mean over seeds (95% CI); D/N: tokens per parameter")
    for column in ("task", "D/N", "g", "widths (g)", "reached", "tokens = FLOPs", "tokens + base",
                   "FLOPs + base", "Δ final ± sd", "eval SE", "|Δ|/SE"):
        table.add_column(column, justify="right", no_wrap=True)
    for cell in cells:
        estimate: SpeedupEstimate = cell["estimate"]
        table.add_row(cell["task"], f"{cell['budget']:g}", f"{cell['factor']:g}", f"{cell['widths']} ({cell['g']:.2f})",
                      f"{estimate.seeds_reached}/{estimate.seeds}", interval_cell(estimate, "tokens"),
                      interval_cell(estimate, "tokens_with_base"), interval_cell(estimate, "flops_with_base"),
                      f"{cell['final_gap'][0]:+.3f}±{cell['final_gap'][1]:.3f}", f"{cell['eval_se']:.4f}",
                      f"{cell['gap_in_paired_se']:.1f}")
    return table


def _bound_table(bounds: list[dict]) -> Table:
    table = Table(title="growth-factor sweep: upper bound on g — FLOPs with the base's cost, 95% CI above 1 (pays), "
                        "below 1 (scratch) or containing 1 (open)")
    factors = list(dict.fromkeys(factor for bound in bounds for factor in bound["verdicts"]))
    for column in ("task", "tokens/param", *(f"g {factor:g}" for factor in factors), "pays up to g",
                   "upper bound: scratch cheaper from g"):
        table.add_column(column, justify="right")
    for bound in bounds:
        def text(g: float | None) -> str:
            return "none in sweep" if g is None else f"{g:.2f}"

        table.add_row(bound["task"], f"{bound['budget']:g}", *(bound["verdicts"].get(factor, "") for factor in factors),
                      text(bound["pays_up_to"]), text(bound["upper_bound"]))
    return table


def _seed_table(rows: list[dict]) -> Table:
    table = Table(title="per seed")
    for column in ("task", "tokens/param", "g", "seed", "warm initial", "warm final", "scratch final", "read",
                   "tokens = FLOPs", "FLOPs, with base"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["task"], f"{row['budget']:g}", f"{row['g']:.2f}", str(row["seed"]),
                      f"{row['warm_initial']:.4f}", f"{row['warm_final']:.4f}", f"{row['scratch_final']:.4f}",
                      row["censoring"], f"{row['tokens']:.2f}×", f"{row['flops_with_base']:.2f}×")
    return table


def _plots(args, sweep: list[dict], trend: list[dict]) -> list[Path]:
    """Two small PNGs beside the results file: speedup against g (per task, per budget) and
    speedup against budget at g≈2; FLOPs without (solid) and with (dashed) the base, 95% bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(args.results).parent / PLOT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, cells, x_key, group_key, x_label in (
            ("growth_factor_sweep_g.png", sweep, "g", "budget", "growth factor g (total parameters, target / base)"),
            ("growth_factor_sweep_budget.png", trend, "budget", "factor", "tokens per parameter")):
        tasks = list(dict.fromkeys(cell["task"] for cell in cells))
        figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False, sharey=True)
        for axis, task in zip(axes[0], tasks):
            for index, group in enumerate(dict.fromkeys(cell[group_key] for cell in cells if cell["task"] == task)):
                chosen = sorted((cell for cell in cells if cell["task"] == task and cell[group_key] == group),
                                key=lambda cell: cell[x_key])
                for measure, style in (("flops", "-o"), ("flops_with_base", "--s")):
                    values = [cell[f"speedup_{measure}"] for cell in chosen]
                    intervals = [cell[f"speedup_{measure}_ci"] or [value, value] for cell, value in zip(chosen, values)]
                    errors = [[value - low for value, (low, _) in zip(values, intervals)],
                              [high - value for value, (_, high) in zip(values, intervals)]]
                    label = (f"{group:g} tok/param" if group_key == "budget" else f"g≈{group:g}") + \
                        (", with base" if measure == "flops_with_base" else "")
                    axis.errorbar([cell[x_key] for cell in chosen], values, yerr=errors, fmt=style, capsize=3,
                                  color=f"C{index}", label=label, markersize=4)
            axis.axhline(1.0, color="grey", linewidth=0.8)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_title(task)
            axis.set_xlabel(x_label, fontsize=8)
            axis.legend(fontsize=6)
        axes[0][0].set_ylabel("FLOPs speedup vs scratch (95% CI)", fontsize=8)
        figure.tight_layout()
        path = folder / name
        figure.savefig(path, dpi=80)
        plt.close(figure)
        paths.append(path)
    return paths


def _notes(args, plots: list[Path]) -> str:
    images = " ".join(f"![{path.stem}]({PLOT_FOLDER}/{path.name})" for path in plots)
    return ("Speedup > 1: the warmstarted run reached scratch's final validation loss (Gaussian-smoothed) with fewer "
            "tokens. Without the base, tokens = FLOPs (same model, same tokens). \"+ base\": the base's training "
            "added to the warmstarted side (its tokens; its FLOPs at its own size, 6·N·D as hpogrow counts them). ≤: some seeds "
            "never reached scratch's final loss and count at their bound (the mean is an upper bound); \"reached\" "
            "says how many did. g: total parameters, target over base (FLOPs: 6 × non-embedding parameters × "
            "tokens, attention left out). Δ final: warmstart − scratch final validation loss at equal budget, mean ± sd over seeds. "
            "Eval SE: standard error of one run's final held-out loss over the eval set's units; |Δ|/SE: the "
            "gap over the standard error of the difference on the shared held-out set (paired by unit), mean over "
            "seeds. LR and batch fixed per task (see the script's `settings`), the same at every target width "
            "(μTransfer); "
f"{args.seeds} seeds; {args.evaluations} evaluations per target run.\n\n{images}")


if __name__ == "__main__":
    main()
