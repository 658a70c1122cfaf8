"""``hpogrow coordcheck``: run the coordinate check and print its verdicts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hpogrow.coordcheck import BROKEN, THRESHOLD_NOTE, CoordCheckConfig, run_coordcheck, write_outputs


def coordcheck(config: CoordCheckConfig, threads: int, out: Path) -> int:
    """Run the check on ``threads`` torch threads, print the table, write CSVs and plots to ``out``."""
    torch.set_num_threads(threads)
    console = Console() if sys.stdout.isatty() else Console(width=140)  # module names stay whole in logs
    seeds = f"seeds {config.seed}–{config.seed + config.seeds - 1}"
    console.print(f"coordinate check: GPT depth {config.depth}, head size {config.head_size}, widths {list(config.widths)} "
                  f"with μP base width {config.base_width}; {config.steps} Adam steps (lr {config.learning_rate:g}, "
                  f"batch {config.batch_size}×{config.seq_len} tokens, a fresh batch each step), {seeds}.")
    console.print("measured: per module and step, the log-log slope of mean |activation| against width, minus the "
                  "slope of a μP reference (μP from scratch, same batches, other initialisation seeds); the "
                  "statistic is the largest |gap| over modules and steps, with the largest ends of their 95% "
                  "Welch intervals over seeds.")
    for name in config.broken:
        console.print(f"broken μP {name}: {BROKEN[name]}")
    started = time.perf_counter()
    configurations = 3 + len(config.broken) + len(config.shrinks)  # reference, SP, μP, …
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("base models" if config.shrinks else "coordinate data", total=configurations * config.seeds)
        result = run_coordcheck(config, on_progress=lambda name: progress.update(task, advance=1, description=name))
    seconds = time.perf_counter() - started
    if result.bases:
        console.print(f"warmstart bases: width {config.base_width}, {config.base_steps} MuAdam steps each (one per seed); "
                      "training loss " + ", ".join(f"{b.first_loss:.2f} → {b.last_loss:.2f}" for b in result.bases)
                      + "; weights moved ‖θ − θ_init‖/‖θ_init‖ = "
                      + ", ".join(f"{b.relative_change:.2f}" for b in result.bases))
    table = Table(title="largest slope gap against μP over modules and steps (+: activations grow faster with "
                        "width than under μP, −: slower)")
    table.add_column("configuration", no_wrap=True)
    table.add_column("gap [95% CI of |gap|]", no_wrap=True, min_width=21)
    table.add_column("threshold", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column(f"|gap| t=1 → {config.steps}", no_wrap=True)
    styles = {"μP-like": "green", "not μP-like": "red", "undecided": "yellow"}
    for name, verdict in result.verdicts.items():
        table.add_row(name, f"{verdict.signed_gap:+.3f} [{verdict.low:.3f}, {verdict.high:.3f}]", f"{verdict.threshold:g}",
                      f"[{styles[verdict.label]}]{verdict.label}[/]", f"{verdict.module} t={verdict.step}",
                      f"{verdict.by_step[0]:.3f} → {verdict.by_step[-1]:.3f}")
    console.print(table)
    console.print(f"threshold {config.threshold:g}: {THRESHOLD_NOTE}")
    sp, mu = result.verdicts["SP"], result.verdicts["μP"]
    console.print(f"this run: μP {mu.gap:.3f}, SP {sp.gap:.3f} (separation ×{sp.gap / max(mu.gap, 1e-9):.0f})"
                  + ("" if (mu.label, sp.label) == ("μP-like", "not μP-like") else
                     "; [yellow]at these settings the threshold does not separate SP from μP: read the gaps, "
                     "not the verdicts[/]"))
    written = write_outputs(result, out)
    console.print(f"wrote {written[0]}, {written[1]} and {len(written) - 2} plots in {out} ({seconds:.0f} s)")
    return 0
