"""Growth advice against measurement at configurations the advice never saw (issue 14).

1. ``hpogrow advise`` on the MLP task with its defaults (or ``--quick``: a tiny ladder), in a
   work folder that keeps its runs (a rerun reuses them). Its own out-of-sample checks are
   reported: the loss law fitted without each width in turn against that width's curve (RMS
   error in units of the seed spread, beside L(D) alone and the next smaller width's curve), and
   the gain model fitted without the largest g against that g's measured pairs.
2. New warmstart/scratch pairs at a budget the ladder did not use (``--holdout-tokens-per-param``,
   default 10, between the ladder's 5 and 20) at every g of the ladder, measured as the ladder
   measures (smoothed curves, censored seeds counted, geometric mean and t-interval over seeds),
   against the advice's prediction at that budget with its bootstrap interval. They are recorded
   in the advice's study (whose scratch ladder they reuse); ``hpogrow advise`` ignores them.

    python bench/advise_holdout.py          # mlp defaults (bench/RESULTS.md) + held-out budget 10 (~3 min)
    python bench/advise_holdout.py --quick  # smoke size (~1 min)
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.advise import AdviseConfig, advise
from hpogrow.advise.advice import pair_speedup
from hpogrow.advise.ladder import run_ladder, signature
from hpogrow.progress import QUIET
from hpogrow.speedup import aggregate_speedups
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import FourierTask


def _interval(low: float, high: float) -> str:
    return f"{low:.2f}–{high:.2f}" if math.isfinite(low) and math.isfinite(high) else "—"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--workdir", default="studies/bench-advise", help="keeps the runs (default studies/bench-advise)")
    parser.add_argument("--holdout-tokens-per-param", type=float, default=10.0)
    args = parser.parse_args(argv)
    console = Console(width=WIDTH)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.quick:
        task = FourierTask(modes=64, eval_examples=256)
        config = AdviseConfig(widths=(8, 12, 16), tokens=64 * 64, growth_factors=(2.0, 3.0, 4.0),
                              pair_tokens_per_param=(4.0, 8.0), seeds=2, bootstrap=20, evaluations=8,
                              workdir=str(Path(args.workdir) / "quick"))
    else:
        task = FourierTask()
        config = AdviseConfig(workdir=args.workdir)
    advice = advise(task, config, console)

    held = replace(advice.config, pair_tokens_per_param=(args.holdout_tokens_per_param,))  # in the advice's study:
    study = load_or_create_study(open_storage(advice.storage), advice.study_name, signature(task, held))  # its ladder reused
    _, pairs, _ = run_ladder(task, held, study, console, QUIET)
    table = Table(title=f"held-out budget {args.holdout_tokens_per_param:g} tokens/param: advice (gain model fitted on "
                        f"{list(advice.config.pair_tokens_per_param)} tokens/param) against measurement")
    for column in ("g", "g reached", "seeds", "reached", "measured speedup with base", "95% CI (t, seeds)",
                   "predicted", "95% bootstrap", "overlap"):
        table.add_column(column, justify="right")
    rows = []
    for g in advice.config.growth_factors:
        chosen = [(scratch, warm) for pair, scratch, warm in pairs if pair.growth_factor == g
                  and not (scratch.diverged or warm.diverged)]
        estimate = aggregate_speedups([pair_speedup(scratch, warm) for scratch, warm in chosen])
        ratio = chosen[0][1].param_ratio
        tau = chosen[0][0].tokens / chosen[0][0].n_params
        predicted, (low, high) = advice.predict_speedup(ratio, tau)
        ci = estimate.flops_with_base_ci
        overlap = ci is not None and low <= ci[1] and ci[0] <= high
        rows.append({"g": g, "param_ratio": ratio, "tokens_per_param": tau, "measured": estimate.flops_with_base,
                     "measured_ci": list(ci) if ci else None, "predicted": predicted, "predicted_interval": [low, high],
                     "seeds": estimate.seeds, "seeds_reached": estimate.seeds_reached, "overlap": overlap})
        table.add_row(f"{g:g}", f"{ratio:.2f}", str(estimate.seeds), str(estimate.seeds_reached),
                      f"{estimate.flops_with_base:.2f}×", "—" if ci is None else _interval(*ci), f"{predicted:.2f}×",
                      _interval(low, high), "yes" if overlap else "no")
    console.print(table)
    own = Table(title="the advice's own out-of-sample checks (loss: RMS error over the width's budgets in units of "
                      f"the seed spread σ = {advice.seed_spread:.3g} in log loss)")
    for column in ("check", "fitted without", "predicted", "measured", "error"):
        own.add_column(column, justify="right")
    for held in advice.holdout_by_width:
        smaller = "—" if held.smaller_width_error is None else f"{held.smaller_width_error:.2f}"
        own.add_row("loss curve", f"width {held.width}", "law", "mean over seeds",
                    f"{held.error:.2f} σ (L(D) alone {held.loss_of_tokens_error:.2f}; smaller width {smaller})")
    for gain_holdout in advice.gain_holdouts:
        ci = gain_holdout.measured.flops_with_base_ci
        own.add_row(f"speedup with base, {gain_holdout.tokens_per_param:.3g} tokens/param", f"g {gain_holdout.growth_factor:g}",
                    f"{gain_holdout.predicted_flops_with_base:.2f}× ({_interval(*gain_holdout.predicted_flops_with_base_interval)})",
                    f"{gain_holdout.measured.flops_with_base:.2f}× ({'—' if ci is None else _interval(*ci)})", "")
    best = advice.recommended
    advice_table = Table(title="the advice")
    for column in ("target params", "tokens/param", "recommended g", "predicted speedup", "scratch cheaper beyond g"):
        advice_table.add_column(column, justify="right")
    advice_table.add_row(f"{advice.target_params:,}", f"{advice.config.target_tokens_per_param:g}",
                         "none" if best is None else f"{best.growth_factor:g}",
                         "—" if best is None else f"{best.speedup:.2f}× ({_interval(*best.speedup_interval)})",
                         "none ≤ 64" if advice.max_growth_factor is None else
                         f"{advice.max_growth_factor:.2f} ({_interval(*advice.max_growth_factor_interval)})")
    console.print(own)
    record = make_record("advise_holdout", argv, args, advice=advice.summary(), holdout_budget=rows)
    append_result(args, record, [advice_table, own, table], console=console)
    return record


if __name__ == "__main__":
    main()
