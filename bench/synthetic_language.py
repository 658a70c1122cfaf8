"""The built-in synthetic language (``--data synthetic``): how fast it is generated, how far apart
its n-gram baselines and its entropy floor lie, and how GPTs of two widths learn it.

1. Generation: tokens per second of CPU time (one thread, ``time.process_time``, so load from
   other processes does not count), median of ``--repeats`` reads of consecutive batches.
2. Entropies (nats/token): the best loss without context (unigram) and with one token of context
   (bigram), both exact; the Bayes-optimal loss (entropy floor) on the evaluation set at context
   128 with its 95% interval, and by position in the window over 2,048 validation windows (how
   much context helps).
3. Learning: μP GPTs at ``--widths`` (depth 2, head size 32, context 128, batch 16, one learning
   rate — μP transfers it across width) trained on the same tokens, ``--seeds`` initialisations
   each; final validation loss against the floor, and CPU seconds per run (one thread).

    python bench/synthetic_language.py            # widths 64 and 128, 2 seeds (~3 CPU-minutes)
    python bench/synthetic_language.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record, spread
from hpogrow.data.synthetic import SyntheticLanguage, SyntheticLanguageConfig
from hpogrow.parametrize import build_model, count_parameters
from hpogrow.tasks import LanguageTask
from hpogrow.train import TrainConfig, train

_READS = ((128, 16), (128, 64), (1024, 16))
"""(context, windows per read) of the generation figures."""
_POSITIONS = (1, 4, 16, 64, 128)
_POSITION_WINDOWS = 2048
"""Validation windows averaged for the floor by position."""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the language's seed")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--tokens", type=int, default=1_400_000,
                        help="training tokens of each run (about a CPU-minute at width 128)")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=2, help="initialisation seeds per width")
    parser.add_argument("--repeats", type=int, default=5)
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.tokens, args.seeds, args.repeats = [32, 64], 16_384, 1, 2
    torch.set_num_threads(1)
    console = Console(width=WIDTH)
    language = SyntheticLanguage(SyntheticLanguageConfig(seed=args.seed))

    generation = [{"context": context, "windows": windows,
                   "tokens_per_cpu_second": _generation_rate(language, context, windows, args.repeats)}
                  for context, windows in _READS]
    speed = Table(title=f"synthetic:{args.seed} generation, one thread (median of {args.repeats})")
    for column in ("context", "windows per read", "tokens per CPU second"):
        speed.add_column(column, justify="right")
    for row in generation:
        speed.add_row(str(row["context"]), str(row["windows"]), f"{row['tokens_per_cpu_second']:,.0f}")
    console.print(speed)

    task = LanguageTask(depth=2, head_size=32, seq_len=128, data=f"synthetic:{args.seed}")
    summary = task.data_summary()
    floor = summary["entropy_floor"]
    position_windows = 256 if args.quick else _POSITION_WINDOWS
    sample = language.windows("validation", np.arange(position_windows), 129)  # (N, T+1)
    by_position = language.bayes_loss(sample).mean(axis=0)  # (T,)
    entropies = {"unigram": summary["unigram_entropy"], "bigram": summary["bigram_entropy"], "floor": floor["value"],
                 "floor_interval": floor["interval_95"],
                 "floor_by_position": {position: float(by_position[position - 1]) for position in _POSITIONS}}
    losses = Table(title="entropies, nats/token (floor: Bayes-optimal loss on the evaluation set, context 128; "
                         f"by position: mean over {position_windows:,} validation windows)")
    for column in ("unigram (no context)", "bigram (1 token)", "floor", "95% interval",
                   *(f"floor at position {position}" for position in _POSITIONS)):
        losses.add_column(column, justify="right")
    losses.add_row(f"{entropies['unigram']:.4f}", f"{entropies['bigram']:.4f}", f"{floor['value']:.4f}",
                   f"{floor['interval_95'][0]:.4f}–{floor['interval_95'][1]:.4f}",
                   *(f"{entropies['floor_by_position'][position]:.3f}" for position in _POSITIONS))
    console.print(losses)

    runs = []
    for width in args.widths:
        for seed in range(args.seeds):
            console.print(f"training width {width}, seed {seed} for {args.tokens:,} tokens")
            runs.append(_train(task, width, seed, args))
    learning = Table(title=f"GPTs on synthetic:{args.seed}: {args.tokens:,} tokens, lr {args.learning_rate:g}, "
                           f"batch 16, {args.seeds} seed(s) per width, one thread")
    for column in ("width", "parameters", "final val loss (mean ± sd)", "above the floor", "below the bigram",
                   "CPU s per run", "curve (seed 0)"):
        learning.add_column(column, justify="right")
    rows = []
    for width in args.widths:
        mine = [run for run in runs if run["width"] == width]
        mean, deviation = spread([run["final_loss"] for run in mine])
        rows.append({"width": width, "parameters": mine[0]["parameters"], "final_mean": mean, "final_sd": deviation,
                     "finals": [run["final_loss"] for run in mine], "cpu_seconds": statistics.median(
                         run["cpu_seconds"] for run in mine), "curve": mine[0]["curve"]})
        learning.add_row(str(width), f"{mine[0]['parameters']:,}", f"{mean:.4f} ± {deviation:.4f}",
                         f"{mean - floor['value']:+.3f}", f"{entropies['bigram'] - mean:+.3f}",
                         f"{rows[-1]['cpu_seconds']:.0f}", " → ".join(f"{loss:.2f}" for _, loss in mine[0]["curve"]))
    console.print(learning)
    first, last = rows[0], rows[-1]
    notes = (f"Width {last['width']} ends {first['final_mean'] - last['final_mean']:.3f} nats below width "
             f"{first['width']} ({args.seeds} seed(s) each, sd {first['final_sd']:.3f} and {last['final_sd']:.3f}); "
             f"after {args.tokens:,} tokens the wider one is {last['final_mean'] - floor['value']:.2f} nats above the floor "
             f"{floor['value']:.3f} and {entropies['bigram'] - last['final_mean']:+.2f} below the bigram entropy "
             f"{entropies['bigram']:.3f}.")
    console.print(notes)
    record = make_record("synthetic_language", argv, args, generation=generation, entropies=entropies,
                         runs=runs, rows=rows)
    append_result(args, record, [speed, losses, learning], notes, console)
    return record


def _generation_rate(language: SyntheticLanguage, context: int, windows: int, repeats: int) -> float:
    rates = []
    for repeat in range(repeats):
        started, reads = time.process_time(), 0
        while time.process_time() - started < 0.5:
            language.windows("train", np.arange(windows) + (repeat * 1000 + reads) * windows, context + 1)
            reads += 1
        rates.append(reads * windows * context / (time.process_time() - started))
    return statistics.median(rates)


def _train(task: LanguageTask, width: int, seed: int, args: argparse.Namespace) -> dict:
    model = build_model(task, width, 32, seed)
    config = TrainConfig(learning_rate=args.learning_rate, batch_size=16, tokens=args.tokens, evaluations=8,
                         seed=seed, device="cpu")
    started = time.process_time()
    result = train(model, task, config)
    return {"width": width, "seed": seed, "parameters": count_parameters(model).total,
            "final_loss": result.final_loss, "cpu_seconds": time.process_time() - started,
            "curve": [(evaluation.tokens_seen, evaluation.val_loss) for evaluation in result.evaluations]}


if __name__ == "__main__":
    main()
