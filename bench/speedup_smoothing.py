"""How well tokens-to-match is read off noisy curves, raw and smoothed (the choice of σ).

A known smooth pair: scratch follows ``L(t) = E + A·(1 + t/t0)^(−α)`` over one budget ``T``
and the warmstarted run is the same curve ``D`` tokens ahead, ``L(t + D)``, so the true speedup
is ``T / (T − D)``. Independent Gaussian noise is added to every evaluation but the one at 0
tokens, and the speedup is read with :func:`hpogrow.speedup.seed_speedup` for each smoothing,
over many noise draws. Reported: the bias and the root-mean-square error of log(estimate / true).

    python bench/speedup_smoothing.py            # 2 curve lengths × 3 speedups × 3 noise levels, 1,000 draws (~2 min)
    python bench/speedup_smoothing.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.speedup import Curve, seed_speedup

SIGMAS = (1.0, 1.5, 2.0)
EVALUATIONS = (8, 16)
"""Evaluations after the start of each run."""
LEADS = (0.3, 0.6, 0.85)
"""``D / T``: true speedups 1.43, 2.5 and 6.67."""
NOISES = (0.005, 0.01, 0.02)
"""Noise standard deviation; the final loss is 2.15 and its last step between evaluations 0.014."""


def power_law(tokens: float) -> float:
    """A loss curve from 5.5 at 0 tokens to 2.15 at the budget 1.0."""
    return 1.8 + 3.7 * (1 + tokens / 0.02) ** -0.6


def renormalised(curve: Curve, sigma: float) -> list[tuple[float, float]]:
    """Plain Gaussian average with the kernel renormalised at the ends (the alternative)."""
    trained = [(float(t), float(v)) for t, v in curve if t > 0]
    spacing = statistics.median(b[0] - a[0] for a, b in zip(trained, trained[1:]))
    smoothed = []
    for center, _ in trained:
        weights = [math.exp(-0.5 * ((t - center) / (sigma * spacing)) ** 2) for t, _ in trained]
        smoothed.append((center, sum(w * v for w, (_, v) in zip(weights, trained)) / sum(weights)))
    return [(t, v) for t, v in curve if t <= 0] + smoothed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    add_common_options(parser)
    args = parser.parse_args(argv)
    draws = 20 if args.quick else args.draws
    readers: dict[str, Callable[[Curve, Curve], float]] = {
        "raw": lambda warm, scratch: seed_speedup(warm, scratch, flops_per_token=1.0, sigma=0).tokens,
        "renormalised σ=1": lambda warm, scratch: seed_speedup(renormalised(warm, 1.0), renormalised(scratch, 1.0),
                                                               flops_per_token=1.0, sigma=0).tokens}
    for sigma in SIGMAS:
        readers[f"local-linear σ={sigma:g}"] = (lambda s: lambda warm, scratch: seed_speedup(
            warm, scratch, flops_per_token=1.0, sigma=s).tokens)(sigma)
    rows = []
    for evaluations, lead, noise in itertools.product(EVALUATIONS, LEADS, NOISES):
        errors = _errors(lead, noise, evaluations, draws, readers)
        rows.append({"evaluations": evaluations, "true_speedup": 1 / (1 - lead), "noise": noise,
                     **{name: {"bias": statistics.fmean(e), "rms": math.sqrt(statistics.fmean(x * x for x in e))}
                        for name, e in errors.items()}})
    table = Table(title=f"log(estimated / true speedup) over {draws} noise draws: bias / root-mean-square error")
    for column in ("evaluations", "true speedup", "noise", *readers):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["evaluations"]), f"{row['true_speedup']:.2f}×", f"{row['noise']:g}",
                      *(f"{row[name]['bias']:+.3f} / {row[name]['rms']:.3f}" for name in readers))
    console = Console(width=WIDTH)
    console.print(table)
    record = make_record("speedup_smoothing", argv, args, modules=(), rows=rows)
    append_result(args, record, [table], console=console)
    return record


def _errors(lead: float, noise: float, evaluations: int, draws: int,
            readers: dict[str, Callable[[Curve, Curve], float]]) -> dict[str, list[float]]:
    tokens = [k / evaluations for k in range(evaluations + 1)]
    scratch = [(t, power_law(t)) for t in tokens]
    warmstart = [(t, power_law(t + lead)) for t in tokens]
    true = 1 / (1 - lead)
    generator = random.Random(0)
    errors: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(draws):
        def jitter(curve: Curve) -> list[tuple[float, float]]:
            return [(t, v + (generator.gauss(0, noise) if t > 0 else 0.0)) for t, v in curve]

        noisy_warmstart, noisy_scratch = jitter(warmstart), jitter(scratch)
        for name, read in readers.items():
            errors[name].append(math.log(read(noisy_warmstart, noisy_scratch) / true))
    return errors


if __name__ == "__main__":
    main()
