"""Successive-halving designs replayed over a full search's logged losses (issue 23, item 1).

``bench/halving_pool.py`` trained every configuration of a grid to the largest candidate budget
and logged its held-out loss at every rung of every candidate design. This replay draws ``n``
configurations from that pool (without replacement, in a random arrival order; seeded) and runs,
over the same draws, with no training:

- **the full search**: every drawn configuration to the design's budget; its winner is the
  lowest loss there;
- **synchronous successive halving** (``sha``) for every design in the pool, and for the η = 3,
  K = 2 design with its first rung moved to :data:`FIRST_RUNGS` of its place (B/12 … B/36; the
  pool logs every step), through
  :func:`hpogrow.search.halving.run_bracket` itself (its ``wave`` looks the losses up), over the
  brackets :meth:`Halving.brackets` cuts the arrival order into;
- **Ray's asynchronous ASHA** (``asha``) at rf 2 and 3 with 3 rungs below the budget, Ray's own
  ``_Bracket`` fed one trial at a time in arrival order (``asha_vs_full.ray_asha_stops``).

Tokens are counted as ``fidelity_reached`` counts them: a trial stopped at a rung spent that rung,
a diverged one its last logged point. Per scheduler, design and ``n``: the tokens as a fraction
of the full search's on the same draw (mean, min, max); the **hit rate** with a 95% Wilson
interval, a hit being the full search's winner or one within the eval set's noise of it (the
paired per-unit losses at the budget differ by less than 2 standard errors of their mean); and
the exact-winner rate. The draws share a finite pool trained with one seed, so the intervals
cover the arrival orders and draws from this pool, not new training seeds.

    python bench/halving_replay.py --pool studies/pool-w64.json --pool studies/pool-w128.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from asha_vs_full import ray_asha_stops
from hpogrow.search.halving import Halving, run_bracket
from hpogrow.search.schedule import Schedule

ASHA_DESIGNS = ("2^3", "3^3")
"""The designs Ray's ASHA is replayed at (RayExecutor's max_rungs 3, rf 2 and 3)."""
FIRST_RUNGS = (0.75, 0.5, 1 / 3, 0.25)
"""Shares of its geometric place B/9 the first rung of the 3^2 design is also replayed at."""
HIT_RATE = 0.95
"""The decision rule: a design qualifies when its hit rate at n = 16 is at least this …"""
MIN_FIRST_STEPS = 2
"""… and its first rung is at least this many steps of the largest batch: a single step compares
the initial loss more than the configurations, and the pool (one training seed) cannot vouch for it."""
GOAL = 0.25
"""Issue 23's goal: a token fraction of the full search's at most this."""


@dataclass(frozen=True)
class Run:
    """One configuration of the pool: its held-out loss by tokens and per-unit losses at the budgets."""

    curve: dict[int, float]
    units: dict[int, list[float]]
    diverged: bool

    def loss(self, tokens: int) -> float:
        """The loss at ``tokens``; +inf past a diverged run's curve."""
        if self.diverged and tokens > max(self.curve, default=0):
            return math.inf
        return self.curve[tokens]

    def spent(self, tokens: int) -> int:
        """Tokens trained when asked to reach ``tokens``: a diverged run stops at its last point."""
        return min(tokens, max(self.curve, default=0)) if self.diverged else tokens


@dataclass(frozen=True)
class Pool:
    path: str
    base_width: int
    runs: list[Run]
    designs: dict[str, tuple[Halving, Schedule]]
    """``"rf^K"`` → the design and its schedule (checked to be the one :meth:`Halving.schedule` gives);
    ``"3^2 @B/18"``: the 3^2 design with its first rung at B/18."""
    step_tokens: int

    def first_rung_steps(self, schedule: Schedule) -> int:
        """Steps of the largest batch to the schedule's first rung."""
        return schedule.rungs[0] // self.step_tokens


def load_pool(path: str) -> Pool:
    data = json.loads(Path(path).read_text())
    runs = [Run({int(k): v for k, v in run["curve"].items()}, {int(k): v for k, v in run["units"].items()},
                bool(run["diverged"])) for run in data["runs"]]
    designs = {}
    for name, logged in data["designs"].items():
        halving = Halving(*map(int, name.split("^")), first_rung=1.0)
        schedule = halving.schedule(data["asked_tokens"], data["step_tokens"])
        if schedule != Schedule(logged["budget"], tuple(logged["rungs"])):
            raise ValueError(f"{path}: design {name} logged {logged}, Halving.schedule gives {schedule}")
        designs[name] = (halving, schedule)
        if name == "3^2":
            for share in FIRST_RUNGS:
                moved = Halving(3, 2, first_rung=share)
                schedule = moved.schedule(data["asked_tokens"], data["step_tokens"])
                if all(str(rung) in run["curve"] for run in data["runs"] for rung in schedule.rungs):
                    designs[f"3^2 @B/{schedule.budget / schedule.rungs[0]:.3g}"] = (moved, schedule)
    return Pool(path, data["base_width"], runs, designs, data["step_tokens"])


def best(pool: Pool, trials: Sequence[int], tokens: int) -> int | None:
    """The trial with the lowest finite loss at ``tokens`` (ties: first drawn); None if all diverged."""
    finite = [(pool.runs[t].loss(tokens), index, t) for index, t in enumerate(trials)
              if math.isfinite(pool.runs[t].loss(tokens))]
    return min(finite)[2] if finite else None


def full_search(pool: Pool, draw: Sequence[int], schedule: Schedule) -> tuple[int, int | None]:
    """Tokens spent and winner when every drawn trial trains to the budget."""
    return sum(pool.runs[t].spent(schedule.budget) for t in draw), best(pool, draw, schedule.budget)


def halving_search(pool: Pool, draw: Sequence[int], halving: Halving, schedule: Schedule) -> tuple[int, int | None]:
    """Tokens spent and winner of synchronous successive halving, run by the scheduler's own code."""
    reached: dict[int, int] = {}

    def wave(trials: Sequence[int], tokens: int) -> dict[int, float]:
        reached.update(dict.fromkeys(trials, tokens))
        return {t: pool.runs[t].loss(tokens) for t in trials}

    start = 0
    for size in halving.brackets(len(draw)):
        run_bracket(draw[start:start + size], halving, schedule, wave, stop=lambda trial: None)
        start += size
    finalists = [t for t in draw if reached[t] == schedule.budget]
    return sum(pool.runs[t].spent(reached[t]) for t in draw), best(pool, finalists, schedule.budget)


def asha_search(pool: Pool, draw: Sequence[int], halving: Halving, schedule: Schedule) -> tuple[int, int | None]:
    """Tokens spent and winner of Ray's ASHA bracket, trials one at a time in arrival order."""
    reports = [[loss for loss in (pool.runs[t].loss(r) for r in schedule.rungs) if math.isfinite(loss)] for t in draw]
    stops = ray_asha_stops(schedule, halving.reduction_factor, reports)
    reached = [schedule.budget if stop is None else stop for stop in stops]
    finalists = [t for t, tokens in zip(draw, reached) if tokens == schedule.budget]
    return sum(pool.runs[t].spent(tokens) for t, tokens in zip(draw, reached)), best(pool, finalists, schedule.budget)


def within_noise(pool: Pool, chosen: int, winner: int, budget: int) -> bool:
    """Whether ``chosen`` is no worse than ``winner`` beyond the eval set's noise at ``budget``: the
    mean of the paired per-unit loss differences is below 2 standard errors of that mean."""
    differences = [a - b for a, b in zip(pool.runs[chosen].units[budget], pool.runs[winner].units[budget])]
    mean = statistics.fmean(differences)
    return mean <= 0 or mean < 2 * statistics.stdev(differences) / math.sqrt(len(differences))


def wilson(hits: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    rate, spread = hits / total, z * z / total
    centre = (rate + spread / 2) / (1 + spread)
    half = z * math.sqrt(rate * (1 - rate) / total + spread / (4 * total)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def replay(pool: Pool, sizes: Sequence[int], draws: int, seed: int) -> list[dict]:
    """One row per scheduler × design × n, over the same seeded draws for every design at an n."""
    searches = [("sha", name, halving_search) for name in pool.designs]
    searches += [("asha", name, asha_search) for name in ASHA_DESIGNS if name in pool.designs]
    rows = []
    for n in sizes:
        generator = random.Random(seed)
        drawn = [generator.sample(range(len(pool.runs)), n) for _ in range(draws)]
        for scheduler, name, search in searches:
            halving, schedule = pool.designs[name]
            if n == 27 and halving.reduction_factor != 3:
                continue
            fractions, regrets, hits, exact, lost = [], [], 0, 0, 0
            for draw in drawn:
                full_tokens, winner = full_search(pool, draw, schedule)
                tokens, chosen = search(pool, draw, halving, schedule)
                fractions.append(tokens / full_tokens)
                lost += chosen is None
                if None not in (chosen, winner):
                    regrets.append(pool.runs[chosen].loss(schedule.budget) - pool.runs[winner].loss(schedule.budget))
                exact += chosen == winner
                hits += chosen == winner or (None not in (chosen, winner)
                                             and within_noise(pool, chosen, winner, schedule.budget))
            rows.append({"scheduler": scheduler, "design": name, "reduction_factor": halving.reduction_factor,
                         "rungs_below": halving.rungs_below, "first_rung": halving.first_rung,
                         "first_rung_steps": pool.first_rung_steps(schedule), "n": n, "brackets": halving.brackets(n),
                         "budget": schedule.budget, "rungs": list(schedule.rungs), "draws": draws,
                         "fraction_mean": statistics.fmean(fractions), "fraction_min": min(fractions),
                         "fraction_max": max(fractions),
                         "spend": halving.spend(n, schedule) if scheduler == "sha" else None,
                         "hits": hits, "hit_rate": hits / draws, "hit_interval": wilson(hits, draws),
                         "exact": exact, "exact_rate": exact / draws, "no_winner": lost,
                         "regret_mean": statistics.fmean(regrets) if regrets else None,
                         "regret_max": max(regrets, default=None)})
    return rows


def choose(rows: list[dict], n: int = 16) -> dict | None:
    """The decision rule: of the halving designs with hit rate ≥ HIT_RATE at ``n`` and a first rung
    of at least MIN_FIRST_STEPS steps, the cheapest."""
    qualified = [row for row in rows if row["scheduler"] == "sha" and row["n"] == n and row["hit_rate"] >= HIT_RATE
                 and row["first_rung_steps"] >= MIN_FIRST_STEPS]
    return min(qualified, key=lambda row: row["fraction_mean"]) if qualified else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", action="append", required=True, help="a pool from bench/halving_pool.py (repeatable)")
    parser.add_argument("--draws", type=int, default=2000, help="draws of n configurations per n")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 27], help="n (27: rf-3 designs only)")
    parser.add_argument("--seed", type=int, default=0)
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.draws = 50
    console = Console(width=WIDTH)
    tables, notes, pools = [], [], []
    for path in args.pool:
        pool = load_pool(path)
        sizes = [n for n in args.sizes if n <= len(pool.runs)]
        rows = replay(pool, sizes, args.draws, args.seed)
        chosen = choose(rows)
        diverged = sum(run.diverged for run in pool.runs)
        units = sorted({len(u) for run in pool.runs for u in run.units.values()})
        tables += [_designs_table(pool), _rows_table(pool, rows, args)]
        notes.append(_decision(pool, chosen, rows))
        pools.append({"pool": path, "base_width": pool.base_width, "runs": len(pool.runs), "diverged": diverged,
                      "eval_units": units, "sizes": sizes, "rows": rows,
                      "choice": None if chosen is None else {k: chosen[k] for k in ("design", "fraction_mean", "hit_rate")}})
    for table in tables:
        console.print(table)
    notes.insert(0, f"Decision rule: among the halving designs whose hit rate is ≥ {HIT_RATE:.0%} at n = 16 and whose "
                    f"first rung is at least {MIN_FIRST_STEPS} steps of the largest batch, the one with the lowest "
                    f"mean token fraction; goal ≤ {GOAL:g}× the full search's tokens. Hit: the "
                    "winner is the full search's, or its per-unit held-out losses at the budget exceed the full "
                    "winner's by less than 2 paired standard errors. × full: mean [min, max] over draws of the "
                    "tokens, as fidelity_reached counts them, over the full search's on the same draw; spend: "
                    "Halving.spend, with no divergence; "
                    "regret: the chosen configuration's loss at the budget minus the full winner's (nats). "
                    f"{args.draws} draws per n (seed {args.seed}), the same draws for every design; intervals: 95% "
                    "Wilson over draws from one pool (one training seed), not over training seeds.")
    text = "\n\n".join(notes)
    console.print(text, markup=False)  # "[min, max]" is text, not rich markup
    record = make_record("halving_replay", argv, args, modules=("ray",), pools=pools)
    append_result(args, record, tables, text, console)
    return record


def _designs_table(pool: Pool) -> Table:
    diverged = sum(run.diverged for run in pool.runs)
    table = Table(title=f"{pool.path}: base width {pool.base_width}, {len(pool.runs)} configurations "
                        f"({diverged} diverged), the candidate designs")
    for column in ("design rf^K", "bracket", "budget (tokens)", "rungs (tokens)", "first rung (steps)"):
        table.add_column(column, justify="right")
    for name, (halving, schedule) in pool.designs.items():
        table.add_row(name, str(halving.bracket), f"{schedule.budget:,}", " → ".join(f"{r:,}" for r in schedule.rungs),
                      str(pool.first_rung_steps(schedule)))
    return table


def _rows_table(pool: Pool, rows: list[dict], args) -> Table:
    table = Table(title=f"width {pool.base_width}: replayed searches against the full search, {args.draws} draws per n")
    for column in ("scheduler", "design", "n", "brackets", "× full", "spend", "hit rate [95%]",
                   "exact winner", "regret mean, max", "no winner"):
        table.add_column(column, justify="right")
    for row in rows:
        low, high = row["hit_interval"]
        table.add_row(row["scheduler"], row["design"], str(row["n"]), "+".join(map(str, row["brackets"])),
                      f"{row['fraction_mean']:.3f} [{row['fraction_min']:.3f}, {row['fraction_max']:.3f}]",
                      "—" if row["spend"] is None else f"{row['spend']:.3f}",
                      f"{row['hit_rate']:.3f} [{low:.3f}, {high:.3f}]", f"{row['exact_rate']:.3f}",
                      "—" if row["regret_mean"] is None else f"{row['regret_mean']:.4f}, {row['regret_max']:.4f}",
                      str(row["no_winner"]))
    return table


def _decision(pool: Pool, chosen: dict | None, rows: list[dict]) -> str:
    if chosen is None:
        best_rate = max((row for row in rows if row["scheduler"] == "sha" and row["n"] == 16),
                        key=lambda row: row["hit_rate"], default=None)
        return (f"Width {pool.base_width}: no halving design reaches a {HIT_RATE:.0%} hit rate at n = 16"
                + (f" (best: {best_rate['design']}, {best_rate['hit_rate']:.3f})." if best_rate else "."))
    low, _ = chosen["hit_interval"]
    return (f"Width {pool.base_width}: chosen {chosen['design']} (rf {chosen['reduction_factor']}, "
            f"{chosen['rungs_below']} rungs below the budget): {chosen['fraction_mean']:.3f}× the full search's tokens "
            f"({'≤' if chosen['fraction_mean'] <= GOAL else 'ABOVE'} the {GOAL:g}× goal), hit rate "
            f"{chosen['hit_rate']:.3f} (95% interval from {low:.3f}), exact winner {chosen['exact_rate']:.3f}.")


if __name__ == "__main__":
    main()
