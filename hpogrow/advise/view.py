"""What the user sees of the advice: the terminal tables, the dashboard note and the two figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hpogrow.advise.advice import Advice
from hpogrow.advise.ladder import LadderRun


def _range(values) -> str:
    low, high = values
    return "—" if not (math.isfinite(low) and math.isfinite(high)) else f"{low:.3g}–{high:.3g}"


def verdict_lines(advice: Advice) -> list[str]:
    """The advice and its out-of-sample evidence, one sentence a line."""
    law = advice.law
    best = advice.recommended
    floor = "E" if not law.floor_fixed else f"E {law.E:.4g} {advice.loss_floor_source}"
    lines = [f"loss law L(N, D) = {law.E:.4g} + {law.A:.4g}/N^{law.alpha:.3f} + {law.B:.4g}/D^{law.beta:.3f} "
             f"(Huber δ=1e-3 on log loss; {floor}; fitted on N {advice.fit_range.params[0]:,.0f}–"
             f"{advice.fit_range.params[1]:,.0f}, D {advice.fit_range.tokens[0]:,.0f}–{advice.fit_range.tokens[1]:,.0f}; "
             f"95% bootstrap over runs, each resample refitted: α {_range(advice.law_intervals['alpha'])}, "
             f"β {_range(advice.law_intervals['beta'])}"
             + ("" if law.floor_fixed else f", E {_range(advice.law_intervals['E'])}") + ")",
             f"each width left out of the fit in turn, its curve predicted (error: RMS over its budgets in units of "
             f"the seed spread σ = {advice.seed_spread:.3g} in log loss; baselines: L(D) alone | the next smaller "
             "width's curve): " + "; ".join(
                 f"w{h.width} {h.error:.1f} ({h.loss_of_tokens_error:.1f} | "
                 f"{'—' if h.smaller_width_error is None else f'{h.smaller_width_error:.1f}'})"
                 for h in advice.holdout_by_width)]
    beaten = [h for h in advice.holdout_by_width if h.beaten_by_baseline]
    if beaten:
        lines.append(f"the law does no better than a baseline at width(s) {[h.width for h in beaten]}: "
                     "its N-dependence is not established there")
    factors = advice.extrapolation
    beyond = [f"{name} ×{factor:.1f}" for part, values in factors.items()
              for name, factor in ((f"{part.replace('_', ' ')} {key}", value) for key, value in values.items())
              if factor > 1]
    if beyond:
        lines.append("the target lies outside what was measured: extrapolated " + ", ".join(beyond))
    gain = advice.gain
    lines.append(f"gain model log s = {gain.intercept:+.3f} {gain.g_slope:+.3f}·log g {gain.budget_slope:+.3f}·log(tokens/param) "
                 f"(s: token speedup; slope on g 95% {_range(advice.gain_intervals['g_slope'])}, on tokens/param "
                 f"{_range(advice.gain_intervals['budget_slope'])}); speedup counting the base S = 1/(1/s + 1/g²)")
    for held in advice.gain_holdouts:
        measured = held.measured
        interval = (f" (95% CI {measured.flops_with_base_ci[0]:.2f}–{measured.flops_with_base_ci[1]:.2f})"
                    if measured.flops_with_base_ci else " (one seed: no interval)")
        inside = (measured.flops_with_base_ci is not None and held.predicted_flops_with_base_interval[0]
                  <= measured.flops_with_base_ci[1] and measured.flops_with_base_ci[0]
                  <= held.predicted_flops_with_base_interval[1])
        lines.append(f"held-out g {held.growth_factor:g} at {held.tokens_per_param:.3g} tokens/param, fitted without it: "
                     f"speedup with base predicted {held.predicted_flops_with_base:.2f}× "
                     f"({_range(held.predicted_flops_with_base_interval)}), measured {measured.flops_with_base:.2f}×"
                     f"{interval} over {measured.seeds} seeds, {measured.seeds_reached} reached scratch's loss"
                     + ("" if inside else " — the intervals do not overlap"))
    tau = advice.config.target_tokens_per_param
    if best is None:
        lines.append(f"at {advice.target_params:,} params and {tau:g} tokens/param no g is predicted to pay "
                     "(speedup counting the base below 1): train from scratch")
    else:
        lines.append(f"recommended g {best.growth_factor:g} at {advice.target_params:,} params and {tau:g} tokens/param: "
                     f"predicted speedup counting the base {best.speedup:.2f}× (95% {_range(best.speedup_interval)})"
                     + ("" if advice.recommendation_significant else " — not significant: no g's interval lies "
                        "above 1, the gain is within the noise of the ladder"))
    bound = advice.max_growth_factor
    pays = bool((advice.gain.flops_speedup_with_base(np.geomspace(1.01, 64, 600), tau) >= 1).any())
    lines.append(("no g up to 64 where scratch becomes cheaper" if pays else "scratch is predicted cheaper at every g")
                 if bound is None else
                 f"beyond g ≈ {bound:.2f} (95% {_range(advice.max_growth_factor_interval)}) scratch is predicted cheaper")
    if advice.diverged_pairs:
        lines.append(f"{advice.diverged_pairs} pairs diverged and were left out of the gain model")
    return lines


def _table(advice: Advice) -> Table:
    table = Table(title=f"advice for {advice.target_params:,} params × {advice.config.target_tokens_per_param:g} "
                        f"tokens/param: scratch loss {advice.scratch_loss:.4f} ({_range(advice.scratch_loss_interval)})")
    for column in ("g", "token speedup", "speedup with base", "95% interval", "warmstart loss", ""):
        table.add_column(column, justify="right")
    for p in advice.predictions:
        mark = "recommended" if p.growth_factor == advice.recommended_growth_factor else (
            "scratch cheaper" if p.speedup < 1 else "")
        table.add_row(f"{p.growth_factor:g}", f"{p.token_speedup:.2f}×", f"{p.speedup:.2f}×", _range(p.speedup_interval),
                      f"{p.warmstart_loss:.4f}", mark)
    return table


def _measured_table(advice: Advice) -> Table:
    table = Table(title="measured warmstart/scratch pairs of the ladder (geometric mean over seeds, 95% t-interval)")
    for column in ("g", "tokens/param", "seeds", "reached", "token speedup", "speedup with base", "95% interval"):
        table.add_column(column, justify="right")
    for g, tau, estimate in advice.measured:
        ci = estimate.flops_with_base_ci
        table.add_row(f"{g:g}", f"{tau:.3g}", str(estimate.seeds), str(estimate.seeds_reached), f"{estimate.tokens:.2f}×",
                      f"{estimate.flops_with_base:.2f}×", "—" if ci is None else f"{ci[0]:.2f}–{ci[1]:.2f}")
    return table


def print_advice(advice: Advice, console: Console) -> None:
    console.print(_measured_table(advice))
    console.print(_table(advice))
    for line in verdict_lines(advice):
        console.print(line)
    console.print(f"figures: {', '.join(str(p) for p in advice.plots)}; {advice.trained} runs trained, {advice.seconds:.0f} s")


def advice_note(advice: Advice) -> str:
    """The dashboard note in Markdown."""
    lines = ["## Growth advice", ""] + [f"- {line}" for line in verdict_lines(advice)]
    lines += ["", "| g | token speedup | speedup with base | 95% interval | warmstart loss |", "|---|---|---|---|---|"]
    lines += [f"| {p.growth_factor:g} | {p.token_speedup:.2f} | {p.speedup:.2f} | {_range(p.speedup_interval)} | "
              f"{p.warmstart_loss:.4f} |" for p in advice.predictions]
    return "\n".join(lines)


def plot_advice(advice: Advice, scratch_runs: list[LadderRun], folder: Path) -> list[Path]:
    """Two PNGs: the loss law against the runs' curves, and the predicted speedup against g."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    name = advice.study_name.replace("/", "_")
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    runs = sorted((run for run in scratch_runs if run.curve and not run.diverged and run.data_position == 0
                   and run.tokens == advice.config.tokens), key=lambda run: run.n_params)  # the ladder
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len({run.n_params for run in runs})))
    color_of = dict(zip(sorted({run.n_params for run in runs}), colors))
    labelled = set()
    for run in runs:
        points = [(t, l) for t, l in run.curve if t > 0]
        tokens = np.array([t for t, _ in points], dtype=float)
        label = None if run.n_params in labelled else f"N={run.n_params:,}"
        labelled.add(run.n_params)
        axis.plot(tokens, [l for _, l in points], ".", color=color_of[run.n_params], alpha=0.6, label=label)
        axis.plot(tokens, advice.law(run.n_params, tokens), "-", color=color_of[run.n_params], lw=1)
    largest = advice.holdout_by_width[-1]
    held = next(run for run in runs if run.width == largest.width)
    tokens = np.array([t for t, _ in held.curve if t > 0], dtype=float)
    axis.plot(tokens, largest.law(held.n_params, tokens), "--", color="crimson",
              label=f"fit without width {largest.width} (error {largest.error:.1f} σ)")
    axis.set(xscale="log", yscale="log", xlabel="tokens D", ylabel="held-out loss",
             title="L(N, D) = E + A/N^α + B/D^β: runs (dots) and fit (lines)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    law_path = folder / f"{name}-loss-law.png"
    figure.savefig(law_path, dpi=120)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    grid = [p.growth_factor for p in advice.predictions]
    axis.plot(grid, [p.speedup for p in advice.predictions], "o-", label="predicted at the target (speedup with base)")
    axis.fill_between(grid, [p.speedup_interval[0] for p in advice.predictions],
                      [p.speedup_interval[1] for p in advice.predictions], alpha=0.25, label="95% bootstrap interval")
    budgets = sorted({f"{tau:.2g}" for _, tau, _ in advice.measured}, key=float)
    budget_color = dict(zip(budgets, plt.get_cmap("autumn")(np.linspace(0, 0.7, len(budgets)))))
    for g, tau, estimate in advice.measured:  # measured: the ladder's pairs (not the target's size or budget)
        ci = estimate.flops_with_base_ci
        shift = 1 + 0.03 * (budgets.index(f"{tau:.2g}") - (len(budgets) - 1) / 2)  # side by side on the log axis
        axis.errorbar([g * shift], [estimate.flops_with_base], yerr=None if ci is None else
                      [[estimate.flops_with_base - ci[0]], [ci[1] - estimate.flops_with_base]],
                      fmt="s", ms=4, capsize=3, alpha=0.8, color=budget_color[f"{tau:.2g}"],
                      label=f"measured in the ladder, {tau:.2g} tokens/param (t-interval over seeds)")
    axis.axhline(1.0, color="grey", lw=0.8)
    if advice.max_growth_factor is not None:
        axis.axvline(advice.max_growth_factor, color="crimson", ls="--", lw=0.8, label="scratch cheaper beyond")
    axis.set(xscale="log", yscale="log", xlabel="growth factor g", ylabel="FLOPs speedup counting the base",
             title=f"{advice.target_params:,} params, {advice.config.target_tokens_per_param:g} tokens/param")
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axis.legend(unique.values(), unique.keys(), fontsize=7)
    figure.tight_layout()
    speedup_path = folder / f"{name}-speedup.png"
    figure.savefig(speedup_path, dpi=120)
    plt.close(figure)
    return [law_path, speedup_path]
