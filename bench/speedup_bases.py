"""Coverage of the speedup's interval when pairs are nested in bases (the choice of estimator).

A search's pairs grow a few bases: pair k grows base k mod B. Each pair's log speedup is
``log μ + b + e``: ``b ~ N(0, σ_base²)`` is its base's luck (shared by that base's pairs) and
``e ~ N(0, σ_pair²)`` the pair's own (perturbation seed, data segment). The speedup a reader wants
is ``μ``, the median over bases and pairs alike. Three 95% intervals are read from the same draws:

- ``bases t``: a t-interval on the bases' mean log speedups, B − 1 degrees of freedom (what
  :func:`hpogrow.speedup.aggregate_speedups` does with two bases or more);
- ``pairs t``: a t-interval on the pairs' log speedups, ignoring the bases (what it did before:
  with every pair on one base, its only choice);
- ``cluster bootstrap``: the percentile interval of the mean log speedup over resamples of whole
  bases, computed exactly (all Bᴮ resamples, equally likely): with B = 2 or 3 there are only 3 or
  10 distinct resamples (as multisets).

Reported: how often each interval covers ``μ``, and its median width (``high/low``).

    python bench/speedup_bases.py            # 7 designs × 3 ratios σ_base/σ_pair, 4,000 draws (~15 s)
    python bench/speedup_bases.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.speedup import CONFIDENCE, clustered_log_t_interval, log_t_interval

DESIGNS = ((1, 2), (1, 4), (2, 2), (2, 3), (2, 4), (3, 3), (3, 6))
"""(bases, pairs): pair k grows base k mod bases. One base is the design before issue 21."""
BASE_SHARES = (0.0, 1.0, 3.0)
"""σ_base / σ_pair: no base effect, as large as a pair's, three times a pair's."""
PAIR_SIGMA = 0.1
"""σ of a pair's own log speedup (about what two pairs of one base differ by in the default search)."""
MEDIAN = 1.3


def bootstrap_interval(logs_by_base: list[list[float]], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean log speedup over every resample of whole bases (exact)."""
    count = len(logs_by_base)
    means = sorted(statistics.fmean([value for index in resample for value in logs_by_base[index]])
                   for resample in itertools.product(range(count), repeat=count))
    low_rank, high_rank = (1 - confidence) / 2 * (len(means) - 1), (1 + confidence) / 2 * (len(means) - 1)

    def at(rank: float) -> float:
        below = math.floor(rank)
        above = min(below + 1, len(means) - 1)
        return means[below] + (means[above] - means[below]) * (rank - below)

    return math.exp(at(low_rank)), math.exp(at(high_rank))


def simulate(bases: int, pairs: int, base_share: float, draws: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Coverage and median width of each interval over ``draws`` searches of one design."""
    generator = random.Random(seed)
    labels = [pair % bases for pair in range(pairs)]
    readers = {"bases t": lambda ratios, logs: clustered_log_t_interval(ratios, labels)[1],
               "pairs t": lambda ratios, logs: log_t_interval(ratios)[1],
               "cluster bootstrap": lambda ratios, logs: bootstrap_interval(logs) if bases > 1 else None}
    hits = {name: 0 for name in readers}
    widths: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(draws):
        luck = [generator.gauss(0, base_share * PAIR_SIGMA) for _ in range(bases)]
        ratios = [MEDIAN * math.exp(luck[label] + generator.gauss(0, PAIR_SIGMA)) for label in labels]
        logs = [[math.log(r) for r, label in zip(ratios, labels) if label == base] for base in range(bases)]
        for name, read in readers.items():
            interval = read(ratios, logs)
            if interval is None:
                continue
            hits[name] += interval[0] <= MEDIAN <= interval[1]
            widths[name].append(interval[1] / interval[0])
    return {name: {"coverage": hits[name] / draws, "width": statistics.median(widths[name])}
            for name in readers if widths[name]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    add_common_options(parser)
    args = parser.parse_args(argv)
    draws = 200 if args.quick else args.draws
    rows = []
    for (bases, pairs), share in itertools.product(DESIGNS, BASE_SHARES):
        rows.append({"bases": bases, "pairs": pairs, "base_share": share,
                     **simulate(bases, pairs, share, draws, seed=len(rows))})
    names = ("bases t", "pairs t", "cluster bootstrap")
    table = Table(title=f"95% intervals of the speedup, pairs nested in bases: coverage of the true median "
                        f"(median width high/low), {draws} draws; σ_pair {PAIR_SIGMA} in log speedup")
    for column in ("bases", "pairs", "σ_base/σ_pair", *names):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["bases"]), str(row["pairs"]), f"{row['base_share']:g}",
                      *(f"{row[name]['coverage']:.1%} ({row[name]['width']:.2f})" if name in row else "—"
                        for name in names))
    console = Console(width=WIDTH)
    console.print(table)
    record = make_record("speedup_bases", argv, args, modules=(), rows=rows)
    append_result(args, record, [table], console=console)
    return record


if __name__ == "__main__":
    main()
