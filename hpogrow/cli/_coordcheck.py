"""``hpogrow coordcheck``: run the coordinate check and print its verdicts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hpogrow.coordcheck import BROKEN, DILUTION_BOUND, THRESHOLD_NOTE, CoordCheckConfig, run_coordcheck, write_outputs


def coordcheck(config: CoordCheckConfig, threads: int, out: Path) -> int:
    """Run the check on ``threads`` torch threads, print the table, write CSVs and plots to ``out``."""
    torch.set_num_threads(threads)
    console = Console() if sys.stdout.isatty() else Console(width=140)  # module names stay whole in logs
    seeds = f"seeds {config.seed}–{config.seed + config.seeds - 1}"
    console.print(f"coordinate check: GPT depth {config.depth}, head size {config.head_size}, widths {list(config.widths)} "
                  f"with μP base width {config.base_width}; {config.steps} Adam steps (lr {config.learning_rate:g}, "
                  f"batch {config.batch_size}×{config.seq_len} tokens, a fresh batch each step), {seeds}.")
    console.print("measured: per module, coordinate block (base: the coordinates growth fills from the base; new: "
                  "the rest) and step t ≥ 2, the log-log slope of mean |activation| against width minus the slope "
                  "of μP with the same initialisation seed and batches; the statistic is, per seed, the largest "
                  "upward gap, with a 95% paired t-interval over seeds. Dilution: the most negative gap of the "
                  f"all-coordinate mean (a fixed base block alone keeps it above {DILUTION_BOUND:g}).")
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
    table = Table(title="largest upward slope gap against paired μP over modules, blocks and steps t ≥ 2 "
                        "(+: activations grow faster with width than under μP)")
    table.add_column("configuration", no_wrap=True)
    table.add_column("gap [95% paired CI]", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column("dilution [95% CI]", no_wrap=True)
    styles = {"pass": "green", "fail": "red", "undecided": "yellow"}
    for name, verdict in result.verdicts.items():
        up, down = verdict.instability, verdict.dilution
        flags = "*" * verdict.dilution_flagged + "†" * verdict.shrink_flagged
        table.add_row(name, f"{up.mean:+.3f} [{up.low:+.3f}, {up.high:+.3f}]",
                      f"[{styles[verdict.label]}]{verdict.label}[/]", f"{verdict.module} ({verdict.block}) t={verdict.step}",
                      f"{down.mean:+.2f} [{down.low:+.2f}, {down.high:+.2f}]{flags}")
    console.print(table)
    console.print(f"*: below {DILUTION_BOUND:g}, more than dilution alone can produce; †: some block surely shrinks against "
                  f"μP by more than the threshold. Per-seed values: verdicts.json.")
    console.print(f"threshold {config.threshold:g}: {THRESHOLD_NOTE}")
    expected = {"SP": "fail", "μP": "pass", **{f"broken: {name}": "fail" for name in config.broken}}
    wrong = [name for name, label in expected.items() if result.verdicts[name].label != label]
    if wrong:
        console.print(f"[yellow]at these settings the controls do not come out as they must ({', '.join(wrong)}): "
                      "read the gaps, not the verdicts[/]")
    written = write_outputs(result, out)
    console.print(f"wrote {written[0]}, {written[1]} and {len(written) - 2} plots in {out} ({seconds:.0f} s)")
    return 0
