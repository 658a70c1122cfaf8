"""What the user sees: the loss grid, the optimum table and verdicts (terminal and dashboard note),
and the μTransfer figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from hpogrow.storage import dashboard_command
from hpogrow.transfer.config import TransferConfig, grid_step
from hpogrow.transfer.verdict import TransferResult, Verdict, shifts_from_base


def describe_sweep(task_name: str, config: TransferConfig, seeds: tuple[int, ...], study_name: str,
                   reused: int, to_train: int) -> str:
    """The line printed before the sweep: what runs, on what budget, and what is reused."""
    rates = config.learning_rates
    return (f"transfer check of {task_name}: widths {list(config.widths)} (μP base {config.widths[0]}), "
            f"{len(rates)} learning rates {_rate(rates[0])} … {_rate(rates[-1])} (step ×{grid_step(rates):.3g}), "
            f"seeds {list(seeds)}; every run: batch {config.batch_size}, {config.tokens:,} tokens; "
            f"study {study_name!r}: {reused} runs reused, {to_train} to train")


def _rate(learning_rate: float | None, digits: int = 2) -> str:
    """``7.81e-3``: short enough for a table of eight learning rates in 80 columns."""
    return "—" if learning_rate is None else f"{learning_rate:.{digits}e}".replace("e-0", "e-").replace("e+0", "e")


def _verdict_line(verdict: Verdict, config: TransferConfig, seeds: int) -> str:
    low, high = verdict.drift_interval
    interval = (f"95% interval [{low:+.2f}, {high:+.2f}] over {seeds} seeds" if not math.isnan(low)
                else f"no interval from {seeds} seed{'s' * (seeds != 1)}")
    per_seed = " ".join("—" if math.isnan(drift) else f"{drift:+.2f}" for drift in verdict.seed_drifts)
    edge = [str(o.width) for o in verdict.optima if o.at_edge]
    return (f"{verdict.parameterization} {verdict.label}: drift {verdict.drift:+.2f} octaves of learning rate per "
            f"doubling of width, {interval} (per seed {per_seed}); bound ±{verdict.max_drift:g}"
            + (f"; optimum at the grid edge at width {', '.join(edge)}" if edge else ""))


_METHOD = ("optimum = grid argmin of the seed-mean final loss; a diverged run counts as the worst loss (+inf), "
           "never dropped; refined = vertex of a parabola in log learning rate through the argmin and its "
           "neighbours; every run sees the same examples, batch size and tokens")

def _optimum_rows(result: TransferResult) -> list[list[str]]:
    rates = result.config.learning_rates
    runs_per_width = len(rates) * len(result.seeds)
    rows = []
    for name, verdict in result.verdicts.items():
        seed_shifts = [shifts_from_base([optimum.seed_best_indices[seed] for optimum in verdict.optima])
                       for seed in range(len(result.seeds))]  # (seeds, widths)
        for position, (optimum, shift) in enumerate(zip(verdict.optima, verdict.shifts)):
            best = optimum.best_index
            rows.append([
                name, str(optimum.width),
                "—" if best is None else _rate(rates[best]) + (" (grid edge)" if optimum.at_edge else ""),
                _rate(optimum.refined_learning_rate), _signed(shift),
                " ".join(_signed(shifts[position]) for shifts in seed_shifts),
                "—" if best is None else f"{optimum.mean_losses[best]:.4f}",
                f"{sum(optimum.diverged)}/{runs_per_width}"])
    return rows


def _signed(shift: int | None) -> str:
    return "—" if shift is None else f"{shift:+d}"


_COLUMNS = ("", "width", "best lr", "refined lr", "shift", "per seed", "best loss", "diverged")


def print_transfer(result: TransferResult, console: Console) -> None:
    """The loss grid of each parameterization, the optima, the verdicts and where to look."""
    rates = result.config.learning_rates
    for name, verdict in result.verdicts.items():
        grid = Table(title=f"{name}: final loss, mean over {len(result.seeds)} seeds (bold: optimum; ✗: a seed diverged)",
                     box=box.SIMPLE_HEAD, padding=(0, 0, 0, 2), pad_edge=False)
        grid.add_column("width", justify="right")
        for rate in rates:
            grid.add_column(_rate(rate, digits=1), justify="right")
        for optimum in verdict.optima:
            grid.add_row(str(optimum.width), *(
                "✗" if not math.isfinite(loss) else f"[bold]{loss:.4f}[/bold]" if index == optimum.best_index else f"{loss:.4f}"
                for index, loss in enumerate(optimum.mean_losses)))
        console.print(grid)
    table = Table(title="optimal learning rate by width (shift: grid steps from the base width's optimum)",
                  caption=_METHOD)
    for column in _COLUMNS:
        table.add_column(column, justify="right")
    for row in _optimum_rows(result):
        table.add_row(*row)
    console.print(table)
    for verdict in result.verdicts.values():
        expected = "pass" if verdict.parameterization == "μP" else "fail"
        color = "green" if verdict.label == expected else "yellow" if verdict.label == "undecided" else "red"
        console.print(f"[{color}]{_verdict_line(verdict, result.config, len(result.seeds))}[/{color}]")
    console.print(f"figure: {result.plot}; {result.trained} runs trained, {len(result.runs) - result.trained} reused, "
                  f"{result.seconds:.0f} s")
    console.print(f"inspect: [bold]{dashboard_command(result.storage, Path(result.config.workdir) / 'artifacts')}[/bold]")


def transfer_note(result: TransferResult) -> str:
    """The dashboard note: the verdicts and the optimum table in Markdown."""
    lines = ["## μTransfer check", ""]
    lines += [f"- **{_verdict_line(v, result.config, len(result.seeds))}**" for v in result.verdicts.values()]
    lines += ["", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _optimum_rows(result)]
    config = result.config
    lines += ["", f"Widths {list(config.widths)} (μP base {config.widths[0]}), learning rates "
              f"{', '.join(_rate(rate) for rate in config.learning_rates)}, seeds {list(result.seeds)}, "
              f"batch {config.batch_size}, {config.tokens:,} tokens per run. {_METHOD[0].upper()}{_METHOD[1:]}.",
              "", "The figure is this study's artifact (final loss against learning rate, one curve per width)."]
    return "\n".join(lines)


def plot_transfer(result: TransferResult, path: Path) -> Path:
    """Final loss against learning rate, one curve per width; μP and SP side by side.

    Curves are seed means; dots are single seeds; a star marks each width's optimum. Losses
    above the untrained model's (and diverged runs, ✗) are drawn at the top edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = result.config
    untrained = float(np.median([run.curve[0][1] for run in result.runs if run.curve]))
    finite = [run.final_loss for run in result.runs if math.isfinite(run.final_loss)]
    top = 1.08 * untrained
    bottom = min(finite, default=0.0)
    bottom -= 0.05 * (top - bottom)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(config.widths)))
    figure, axes = plt.subplots(1, len(result.verdicts), figsize=(5.6 * len(result.verdicts), 4.3), sharey=True)
    for axis, (name, verdict) in zip(np.atleast_1d(axes), result.verdicts.items()):
        for color, optimum in zip(colors, verdict.optima):
            means = np.minimum(np.asarray(optimum.mean_losses), top)
            axis.plot(config.learning_rates, means, color=color, marker=".", label=f"width {optimum.width}")
            capped = [index for index, loss in enumerate(optimum.mean_losses) if not loss < top]
            axis.scatter([config.learning_rates[i] for i in capped], [top] * len(capped), color=color, marker="x", zorder=3)
            seed_runs = [run for run in result.runs if run.parameterization == name and run.width == optimum.width]
            axis.scatter([run.learning_rate for run in seed_runs], [min(run.final_loss, top) for run in seed_runs],
                         color=color, s=8, alpha=0.35)
            if optimum.best_index is not None:
                axis.scatter(config.learning_rates[optimum.best_index], optimum.mean_losses[optimum.best_index],
                             color=color, marker="*", s=140, edgecolor="black", zorder=4)
        axis.axhline(untrained, color="grey", linestyle=":", linewidth=1)
        axis.set_xscale("log", base=2)
        axis.set_ylim(bottom, top * 1.01)
        axis.set_xlabel("learning rate")
        low, high = verdict.drift_interval
        axis.set_title(f"{name}: {verdict.label}, drift {verdict.drift:+.2f} [{low:+.2f}, {high:+.2f}] "
                       f"oct/doubling (bound ±{verdict.max_drift:g})", fontsize=9)
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(f"final held-out loss ({config.tokens:,} tokens)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    figure.suptitle(f"μTransfer check: {len(result.seeds)} seeds, batch {config.batch_size}; dotted: untrained loss; "
                    "✗: diverged or above it", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
