"""A μP coordinate check that can fail: SP, μP and warmstarted μP against μP itself.

What is measured. For every configuration, seed and width, mup's ``get_coord_data`` trains a
small GPT for ``steps`` Adam steps (a fresh batch each step) and records ``l1``, the mean
absolute value of every module's output, before each step (``t = 1`` is the initialisation).
For every module and step, the log2-log2 slope of ``l1`` against width says how that
activation scales with width. A *slope gap* is a configuration's slope minus the slope of a μP
reference run (μP from scratch on the same batches, with initialisation seeds of its own),
both averaged over seeds; its sign says whether activations grow (+) or shrink (−) with width
relative to μP. The statistic is the **largest absolute slope gap over all modules and steps**.
A gap ``g`` means the activation at the widest width, relative to the narrowest, is
``(w_max/w_min)^g`` times μP's ratio.

Every module and step gets a 95% Welch t-interval of its gap over seeds; the interval of the
statistic runs from the largest lower end to the largest upper end of those intervals (of the
absolute gaps). A configuration is ``μP-like`` when the whole interval lies below the
threshold (every module and step is surely below it), ``not μP-like`` when it lies above (some
module and step is surely above it), ``undecided`` otherwise.

The threshold (:data:`THRESHOLD`) comes from the separation of SP and μP, measured at this
module's defaults with four disjoint sets of 3 seeds (``hpogrow coordcheck --shrinks --seed S``
for S = 0, 3, 6, 9). μP against its reference: largest gap 0.052–0.152 (median 0.084), upper
interval ends 0.227–0.272. SP: largest gap 1.41–1.46 (median 1.43), lower interval ends
1.32–1.39. The verdict compares interval ends with the threshold, so the threshold sits halfway,
on a log scale, between the highest upper end of μP (0.272) and the lowest lower end of SP
(1.317): √(0.272 · 1.317) = 0.60, a factor 2.2 from each. A gap of 0.60 means activations whose
ratio between widths 512 and 64 differs from μP's by 8^0.6 ≈ 3.5× (SP: 8^1.43 ≈ 20×; μP's own
seed noise: 8^0.084 ≈ 1.2×).

Warmstarted configurations grow a base model trained at the μP base width (below every checked
width) for ``base_steps`` steps, one base per seed, with shrink–zero-pad–perturb; λ = 0 is μP
plus the growth machinery and must score exactly as μP does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mup
import numpy as np
import pandas as pd
import torch
from mup.coord_check import get_coord_data
from torch import nn

from hpogrow.coordcheck_config import BROKEN, THRESHOLD, CoordCheckConfig  # noqa: F401 (public here too)
from hpogrow.errors import UsageError
from hpogrow.growth import shrink_zero_pad_perturb
from hpogrow.parametrize import build_model
from hpogrow.stats import student_t_quantiles
from hpogrow.tasks import LanguageTask

THRESHOLD_NOTE = ("halfway on a log scale between μP's highest upper interval end (0.272) and SP's lowest lower "
                  "end (1.317), measured at the defaults over 4 disjoint sets of 3 seeds; largest gaps there: μP "
                  "0.052–0.152, SP 1.41–1.46")
REFERENCE = "μP reference"
_REFERENCE_SEED = 10_000
"""Seeds of the μP reference are offset by this, so they differ from a configuration's (for first
seeds below 10,000)."""

Builder = Callable[[int, int], nn.Module]
"""``(width, seed) -> model`` with base shapes set."""


def _cancel_readout_scaling(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, mup.MuReadout):
            module.output_mult = module.width_mult()  # forward computes W·x: no 1/width_mult
    return model


@dataclass(frozen=True)
class Verdict:
    """The largest slope gap of one configuration against the μP reference."""

    gap: float
    """Largest |slope gap| over modules and steps (seed means)."""
    low: float
    high: float
    """Largest lower and upper ends of the per-module, per-step 95% intervals of |gap|."""
    module: str
    step: int
    signed_gap: float
    """The gap at ``module`` and ``step`` with its sign (+: grows faster with width than μP)."""
    threshold: float
    by_step: tuple[float, ...]
    """Largest |slope gap| over modules at each step ``t = 1, 2, …`` (seed means)."""

    @property
    def label(self) -> str:
        if self.high < self.threshold:
            return "μP-like"
        return "not μP-like" if self.low > self.threshold else "undecided"


@dataclass(frozen=True)
class BaseSummary:
    """Summary of one warmstart base: its training loss and how far its weights moved."""

    seed: int
    first_loss: float
    last_loss: float
    """Mean training loss of the last 10 steps."""
    relative_change: float
    """‖θ − θ_init‖ / ‖θ_init‖ over all parameters."""


@dataclass
class CoordCheckResult:
    """Everything one check measured: the raw ``l1`` data, a verdict per configuration (not the
    reference) and the warmstart bases' summaries."""

    config: CoordCheckConfig
    data: pd.DataFrame
    """Columns ``configuration, seed, width, module, t, l1``."""
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    bases: list[BaseSummary] = field(default_factory=list)


def width_slopes(data: pd.DataFrame) -> pd.DataFrame:
    """log2-log2 slope of ``l1`` against width per ``configuration, seed, module, t``.

    Modules whose ``l1`` is zero at some width (a zero-initialised readout or query at ``t = 1``)
    have no slope there and are left out; a non-finite ``l1`` (a diverged run) gives slope +inf.
    """
    rows = data[data.module != ""].sort_values("width", kind="stable")
    centred = np.log2(rows.width.unique().astype(float))  # (W,)
    centred -= centred.mean()

    def slope(values: np.ndarray) -> float:
        if not np.isfinite(values).all():
            return math.inf
        logs = np.log2(values)
        return float(centred @ (logs - logs.mean()) / (centred @ centred))

    l1 = rows.groupby(["configuration", "seed", "module", "t"], sort=False).l1.apply(np.asarray)
    l1 = l1[l1.map(lambda values: len(values) == len(centred) and (values != 0).all())]
    return l1.map(slope).rename("slope").reset_index()


def gap_intervals(candidate: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column, ``mean(candidate) − mean(reference)`` and its 95% Welch t-interval.

    Args:
        candidate: slopes ``(seeds, columns)``.
        reference: slopes ``(reference seeds, columns)``.

    Returns:
        ``(gap, low, high)``, each ``(columns,)``.
    """
    variance_candidate = candidate.var(0, ddof=1) / len(candidate)
    variance_reference = reference.var(0, ddof=1) / len(reference)
    error = np.sqrt(variance_candidate + variance_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        freedom = (variance_candidate + variance_reference) ** 2 / (
            variance_candidate ** 2 / (len(candidate) - 1) + variance_reference ** 2 / (len(reference) - 1))
    freedom = np.nan_to_num(freedom, nan=len(candidate) + len(reference) - 2)
    half = student_t_quantiles(0.975, np.clip(freedom, 1, None)) * error
    gap = candidate.mean(0) - reference.mean(0)
    return gap, gap - half, gap + half


def judge(slopes: pd.DataFrame, configuration: str, threshold: float) -> Verdict:
    """Largest |slope gap| of ``configuration`` against :data:`REFERENCE`, with its interval.

    The interval runs from the largest lower end to the largest upper end of the per-module,
    per-step 95% intervals of |gap|: ``not μP-like`` means some module and step lies above the
    threshold with its whole interval, ``μP-like`` that every one lies below.

    Args:
        slopes: :func:`width_slopes` of the configuration and of the reference.
    """
    def table(name: str) -> pd.DataFrame:  # (seeds, module×t)
        return slopes[slopes.configuration == name].pivot_table(index="seed", columns=["module", "t"], values="slope")

    candidate, reference = table(configuration), table(REFERENCE)
    columns = candidate.columns.intersection(reference.columns)
    candidate, reference = candidate[columns].to_numpy(), reference[columns].to_numpy()  # (seeds, module×t)
    keep = ~(np.isnan(candidate).any(0) | np.isnan(reference).any(0))
    candidate, reference, columns = candidate[:, keep], reference[:, keep], columns[keep]
    if np.isinf(reference).any():
        raise UsageError("the μP reference diverged (non-finite activations); lower --lr")
    diverged = np.isinf(candidate).any(0)  # (module×t,)
    gap, low, high = np.full(len(columns), math.inf), np.full(len(columns), math.inf), np.full(len(columns), math.inf)
    gap[~diverged], low[~diverged], high[~diverged] = gap_intervals(candidate[:, ~diverged], reference[:, ~diverged])
    absolute_low = np.where(low > 0, low, np.where(high < 0, -high, 0.0))
    absolute_high = np.maximum(np.abs(low), np.abs(high))
    worst = int(np.abs(gap).argmax())
    module, step = columns[worst]
    by_step = pd.Series(np.abs(gap), index=columns.get_level_values("t")).groupby(level=0).max()
    return Verdict(gap=float(abs(gap[worst])), low=float(absolute_low.max()), high=float(absolute_high.max()),
                   module=str(module), step=int(step), signed_gap=float(gap[worst]), threshold=threshold,
                   by_step=tuple(float(by_step[t]) for t in sorted(by_step.index)))


def _train_base(task: LanguageTask, config: CoordCheckConfig, seed: int, first_position: int) -> tuple[nn.Module, BaseSummary]:
    """The warmstart base: μP at ``base_width``, ``base_steps`` MuAdam steps on fresh batches."""
    model = build_model(task, config.base_width, config.base_width, seed)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = mup.MuAdam(model.parameters(), lr=config.learning_rate)
    losses = []
    for step in range(config.base_steps):
        batch = task.batch(first_position + step * config.batch_size, config.batch_size, torch.device("cpu"))
        loss = task.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        moved = math.sqrt(sum(float(((p - q) ** 2).sum()) for p, q in zip(model.parameters(), initial)))
        size = math.sqrt(sum(float((q ** 2).sum()) for q in initial))
    return model, BaseSummary(seed, losses[0], float(np.mean(losses[-10:])), moved / size)


def _standard(task: LanguageTask, width: int, seed: int) -> nn.Module:
    """SP: PyTorch's default init, no width multipliers (each model is its own base)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = task.build_model(width)
    return mup.set_base_shapes(model, None)


def _configurations(task: LanguageTask, config: CoordCheckConfig,
                    bases: dict[int, nn.Module]) -> dict[str, tuple[Builder, bool]]:
    """``name -> (builder, whether mup's per-layer Adam is used)``, reference first."""
    def mu(width: int, seed: int) -> nn.Module:
        return build_model(task, width, config.base_width, seed)

    configurations: dict[str, tuple[Builder, bool]] = {
        REFERENCE: (lambda width, seed: mu(width, _REFERENCE_SEED + seed), True),
        "SP": (lambda width, seed: _standard(task, width, seed), False),
        "μP": (mu, True),
    }
    if "torch-adam" in config.broken:
        configurations["broken: torch-adam"] = (mu, False)
    if "readout-no-1/width" in config.broken:
        configurations["broken: readout-no-1/width"] = (lambda width, seed: _cancel_readout_scaling(mu(width, seed)), True)
    for shrink in config.shrinks:
        configurations[f"warmstart λ={shrink:g}"] = (
            lambda width, seed, shrink=shrink: shrink_zero_pad_perturb(bases[seed], mu(width, seed), shrink=shrink), True)
    return configurations


def run_coordcheck(config: CoordCheckConfig = CoordCheckConfig(),
                   on_progress: Callable[[str], None] | None = None) -> CoordCheckResult:
    """Coordinate data, slopes and verdicts for every configuration of ``config``.

    Example (CPU, a few seconds; prints ``not μP-like μP-like``)::

        from hpogrow.coordcheck import CoordCheckConfig, run_coordcheck
        result = run_coordcheck(CoordCheckConfig(widths=(32, 64, 128), base_width=16, head_size=16,
                                                 seq_len=16, batch_size=4, steps=5, shrinks=()))
        print(result.verdicts["SP"].label, result.verdicts["μP"].label)
    """
    task = LanguageTask(depth=config.depth, head_size=config.head_size, seq_len=config.seq_len, data=config.data)
    seeds = range(config.seed, config.seed + config.seeds)
    batches_per_seed = config.steps * config.batch_size

    def batches(slot: int) -> list[tuple[torch.Tensor, torch.Tensor]]:  # [(B, T), (B·T,)] × steps
        first = slot * batches_per_seed
        return [(inputs, targets.reshape(-1)) for inputs, targets in (
            task.batch(first + step * config.batch_size, config.batch_size, torch.device("cpu"))
            for step in range(config.steps))]

    # batch slots: seed k of every configuration and of the reference trains on slot 2k (the odd
    # slots are unused); the bases train on batches after all of them
    base_start = 2 * (config.seed + config.seeds) * batches_per_seed
    trained = {seed: _train_base(task, config, seed, base_start + seed * config.base_steps * config.batch_size)
               for seed in (seeds if config.shrinks else ())}
    bases = {seed: model for seed, (model, _) in trained.items()}
    frames = []
    for name, (builder, use_mup) in _configurations(task, config, bases).items():
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):  # get_coord_data seeds the global generator
                frame = get_coord_data({width: (lambda width=width: builder(width, seed)) for width in config.widths},
                                       batches(2 * seed), optimizer="adam", lr=config.learning_rate, mup=use_mup,
                                       nsteps=config.steps, nseeds=1, cuda=False, flatten_output=True,
                                       fix_data=False, show_progress=False)
            frames.append(frame.assign(configuration=name, seed=seed)[["configuration", "seed", "width", "module", "t", "l1"]])
            if on_progress:
                on_progress(name)
    data = pd.concat(frames, ignore_index=True)
    slopes = width_slopes(data)
    verdicts = {name: judge(slopes, name, config.threshold) for name in data.configuration.unique() if name != REFERENCE}
    return CoordCheckResult(config, data, verdicts, [summary for _, summary in trained.values()])


def _file_name(name: str) -> str:
    return "coordcheck_" + "".join(c if c.isalnum() or c in ".-" else "_" for c in
                                   name.replace("λ=", "shrink").replace("μ", "mu")) + ".png"


def write_outputs(result: CoordCheckResult, out: Path) -> list[Path]:
    """``coordcheck.csv`` (every ``l1``), ``coordcheck_verdicts.csv`` and one PNG per configuration.

    A PNG shows mean ``l1`` of every module against width (log-log, base 2) at five steps, the μP
    reference dashed for the module that decides the verdict, and in its last panel the largest
    |slope gap| at each step against the threshold.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "coordcheck.csv", out / "coordcheck_verdicts.csv"]
    result.data.to_csv(written[0], index=False)
    pd.DataFrame([{"configuration": name, "gap": v.gap, "low": v.low, "high": v.high, "threshold": v.threshold,
                   "verdict": v.label, "module": v.module, "step": v.step, "signed_gap": v.signed_gap,
                   "gap_first_step": v.by_step[0], "gap_last_step": v.by_step[-1]}
                  for name, v in result.verdicts.items()]).to_csv(written[1], index=False)
    means = result.data[result.data.module != ""].groupby(["configuration", "t", "module", "width"]).l1.mean()
    steps = sorted(result.data.t.unique())
    shown = sorted({steps[round(i * (len(steps) - 1) / 4)] for i in range(5)})
    for name, verdict in result.verdicts.items():
        figure, axes = plt.subplots(1, len(shown) + 1, figsize=(3.4 * (len(shown) + 1), 3.4))
        for axis, step in zip(axes, shown):
            for module, rows in means[name][step].groupby(level="module"):
                if (rows > 0).all():
                    axis.plot(rows.index.get_level_values("width"), rows.to_numpy(), marker=".", label=module,
                              linewidth=2.5 if module == verdict.module else 1)
            reference = means[REFERENCE][step].get(verdict.module)
            if reference is not None and (reference > 0).all():
                axis.plot(reference.index, reference.to_numpy(), "k--", label=f"{verdict.module} (μP reference)")
            axis.set_xscale("log", base=2)
            axis.set_yscale("log", base=2)
            axis.set(title=f"t={step}", xlabel="width")
            axis.sharey(axes[0])
        axes[0].set_ylabel("mean |activation| (l1)")
        profile = axes[-1]
        profile.plot(steps[:len(verdict.by_step)], verdict.by_step, marker=".", label="largest |slope gap|")
        profile.axhline(verdict.threshold, color="red", linestyle=":", label=f"threshold {verdict.threshold:g}")
        profile.set(title="against μP", xlabel="step t", ylim=(0, max(2 * verdict.threshold, *verdict.by_step) * 1.05))
        profile.legend(fontsize=6)
        axes[-2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, -0.18), ncol=3)
        figure.suptitle(f"{name}: largest slope gap vs μP {verdict.signed_gap:+.2f} (|gap| in "
                        f"[{verdict.low:.2f}, {verdict.high:.2f}]) at {verdict.module} t={verdict.step}; "
                        f"threshold {verdict.threshold:g} → {verdict.label}")
        figure.tight_layout()
        path = out / _file_name(name)
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written
