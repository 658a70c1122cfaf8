"""A μP coordinate check that judges instability: activations growing with width faster than μP's.

**What is measured.** For every configuration, seed and width a small GPT takes ``steps`` Adam
steps on fresh batches (the same batches for every configuration and width of one seed); forward
hooks record, before each step (``t = 1`` is the initialisation), the mean absolute value of every
module's output. A module whose output width grows with the model (the residual stream, attention
heads, the MLP's hidden layer) is recorded three times: over all coordinates (``all``), over the
**base block** — the coordinates a model of ``base_width`` has, which growth fills from the base
(:func:`hpogrow.growth.shrink_zero_pad_perturb` copies into the top-left block, so the first
``base_width`` residual coordinates, the first heads, the first ``mlp_ratio·base_width`` hidden
units) — and over the **new** coordinates. The readout (vocabulary-sized) is recorded whole.
Per module, block and step, the log2-log2 slope of that mean against width says how the
activation scales with width.

**Paired gaps.** A configuration's slope minus the slope of the μP reference *with the same
initialisation seed and the same batches* (for warmstarted μP the reference is exactly its
perturbation term: λ = 0 gives gap 0 everywhere). Only steps ``t ≥ 2`` count (at ``t = 1``
warmstarting differs from μP by construction).

**Instability statistic** (upward, one-sided): per seed, the largest gap over modules, steps and
blocks (base and new blocks separately; whole for unsplit modules). Its 95% interval is a paired
t-interval over the seeds' maxima (``n − 1`` degrees of freedom). Verdict ``pass`` when the whole
interval lies below :data:`~hpogrow.coordcheck_config.THRESHOLD`, ``fail`` when above,
``undecided`` otherwise. A gap ``g`` means the activation at the widest width, relative to the
narrowest, is ``(w_max/w_min)^g`` times μP's ratio.

**Dilution** (downward, reported apart). The all-coordinate mean of a grown model mixes a fixed
block of ``b`` base coordinates with ``w − b`` new ones: ``m_w = f·B + (1 − f)·N`` with
``f = b/w``. If both blocks scale as μP does (``B``, ``N`` μP-like in width), the local slope of
``log2 m_w`` relative to μP is ``−(r − 1)f / (1 + (r − 1)f)`` for ``r = B/N``: it lies in
``(−1, 0)`` for ``r > 1`` (a large base block dilutes) and in ``(0, f/(1 − f))`` for ``r < 1``.
So **dilution alone produces all-coordinate gaps above −1** (:data:`DILUTION_BOUND`); the
dilution statistic (per seed the most negative all-coordinate gap, t ≥ 2; its paired interval)
is *flagged* only when its whole interval lies below −1. (The same algebra shows why the
instability statistic reads blocks, not the mean: mixing alone can raise the all-coordinate
slope by up to ``f_min/(1 − f_min)``, 1 at ``w_min = 2b``.) A block shrinking against μP is no
dilution (a block's composition is fixed): it is reported as ``shrink``, flagged when its
interval lies below −threshold.

One mixing effect reaches the blocks: LayerNorm divides every coordinate by the RMS over *all*
coordinates, ``√(f·B² + (1 − f)·N²)``, so when the base block is larger that RMS falls with its
share and *both* blocks' normalised outputs rise, with local slope ``½·f(r² − 1)/(1 + f(r² − 1))``
∈ ``(0, ½)``. A LayerNorm output's block can thus gain up to +0.5 by mixing alone: below the
threshold, so it cannot fail a configuration by itself, but it can make up most of a passing
one's statistic.

**Threshold**: calibrated on the controls only, before any λ was looked at; the derivation is in
:data:`~hpogrow.coordcheck_config.THRESHOLD` and docs/checks.md#coordinate-check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mup
import numpy as np
import pandas as pd
import torch
from torch import nn

from hpogrow.coordcheck_config import BROKEN, THRESHOLD, THRESHOLD_NOTE, CoordCheckConfig  # noqa: F401 (public here too)
from hpogrow.errors import UsageError
from hpogrow.options import flag
from hpogrow.growth import shrink_zero_pad_perturb
from hpogrow.parametrize import build_model
from hpogrow.stats import student_t_quantile
from hpogrow.tasks import LanguageTask

REFERENCE = "μP reference"
CONTROL = "μP"
"""μP from scratch with initialisation seeds other than the reference's: the control that must pass."""
DILUTION_BOUND = -1.0
"""Lowest all-coordinate slope gap that mixing a fixed base block into μP-scaling coordinates can
produce (the module docstring derives it)."""
_CONTROL_SEED = 10_000
"""The control's seeds are offset by this from the reference's (for first seeds below 10,000)."""
BLOCKS = ("base", "new")
"""The coordinate blocks judged for instability in a width-scaled module's output."""

Builder = Callable[[int, int], nn.Module]
"""``(width, seed) -> model`` with base shapes set."""


def _cancel_readout_scaling(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, mup.MuReadout):
            module.output_mult = module.width_mult()  # forward computes W·x: no 1/width_mult
    return model


@dataclass(frozen=True)
class Interval:
    """A per-seed statistic with its mean and 95% paired t-interval over seeds."""

    mean: float
    low: float
    high: float
    per_seed: tuple[float, ...]

    @classmethod
    def over_seeds(cls, values: np.ndarray) -> Interval:
        """Mean ± t(0.975, n − 1)·s/√n; any infinite value makes the whole interval infinite."""
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).all():
            value = math.inf if (values == math.inf).any() else -math.inf
            return cls(value, value, value, tuple(float(v) for v in values))
        mean = float(values.mean())
        half = student_t_quantile(0.975, len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))
        return cls(mean, mean - half, mean + half, tuple(float(v) for v in values))

    def against(self, threshold: float) -> str:
        """``pass`` when the interval lies below ``threshold``, ``fail`` above, else ``undecided``."""
        if self.high < threshold:
            return "pass"
        return "fail" if self.low > threshold else "undecided"


@dataclass(frozen=True)
class Verdict:
    """One configuration against its paired μP reference."""

    instability: Interval
    """Per seed, the largest upward gap over modules, blocks and steps t ≥ 2."""
    threshold: float
    module: str
    block: str
    step: int
    """Where the seed-mean gap is largest."""
    by_step: tuple[float, ...]
    """Per step t = 2, 3, …: the largest upward gap over modules and blocks (seed mean of the
    per-seed maxima)."""
    dilution: Interval
    """Per seed, the most negative all-coordinate gap over width-scaled modules and steps t ≥ 2."""
    dilution_by_step: tuple[float, ...]
    shrink: Interval
    """Per seed, the most negative block gap (base, new, or an unsplit module) over steps t ≥ 2."""
    readable: bool = True
    """``False`` when the μP control did not pass at these settings (:func:`gate_on_control`):
    the threshold does not separate μP from its own seed noise there, so this verdict is
    ``undecided`` whatever the gap."""

    @property
    def label(self) -> str:
        return self.instability.against(self.threshold) if self.readable else "undecided"

    @property
    def dilution_flagged(self) -> bool:
        """Below what dilution alone can produce (:data:`DILUTION_BOUND`), surely."""
        return self.dilution.high < DILUTION_BOUND

    @property
    def shrink_flagged(self) -> bool:
        """Some block surely shrinks against μP by more than the threshold."""
        return self.shrink.high < -self.threshold

    def to_json(self) -> dict:
        """The verdicts.json entry (non-finite numbers as strings, so that the file stays JSON)."""
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return clean({
            "statistic": self.instability.mean, "per_seed": list(self.instability.per_seed),
            "interval": [self.instability.low, self.instability.high], "threshold": self.threshold,
            "verdict": self.label, "readable": self.readable,
            "against_threshold": self.instability.against(self.threshold),
            "where": {"module": self.module, "block": self.block, "t": self.step},
            "by_step": list(self.by_step),
            "dilution": {"statistic": self.dilution.mean, "per_seed": list(self.dilution.per_seed),
                         "interval": [self.dilution.low, self.dilution.high], "bound": DILUTION_BOUND,
                         "flagged": self.dilution_flagged, "by_step": list(self.dilution_by_step)},
            "shrink": {"statistic": self.shrink.mean, "per_seed": list(self.shrink.per_seed),
                       "interval": [self.shrink.low, self.shrink.high], "bound": -self.threshold,
                       "flagged": self.shrink_flagged},
        })


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
    """Everything one check measured: the raw data, a verdict per configuration (not the
    reference) and the warmstart bases' summaries."""

    config: CoordCheckConfig
    data: pd.DataFrame
    """Columns ``configuration, seed, width, module, block, t, l1`` (block ``all``, ``base`` or ``new``)."""
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    bases: list[BaseSummary] = field(default_factory=list)


def width_slopes(data: pd.DataFrame) -> pd.DataFrame:
    """log2-log2 slope of ``l1`` against width per ``configuration, seed, module, block, t``.

    Rows whose ``l1`` is zero at some width (a zero-initialised readout or query at ``t = 1``) have
    no slope and are left out; a non-finite ``l1`` (a diverged run) gives slope +inf.
    """
    rows = data.sort_values("width", kind="stable")
    centred = np.log2(rows.width.unique().astype(float))  # (W,)
    centred -= centred.mean()

    def slope(values: np.ndarray) -> float:
        if not np.isfinite(values).all():
            return math.inf
        logs = np.log2(values)
        return float(centred @ (logs - logs.mean()) / (centred @ centred))

    l1 = rows.groupby(["configuration", "seed", "module", "block", "t"], sort=False).l1.apply(np.asarray)
    l1 = l1[l1.map(lambda values: len(values) == len(centred) and (values != 0).all())]
    return l1.map(slope).rename("slope").reset_index()


def paired_gaps(slopes: pd.DataFrame, configuration: str) -> pd.DataFrame:
    """``configuration``'s slope minus the reference's at the same seed, module, block and step (t ≥ 2).

    Returns:
        Columns ``seed, module, block, t, gap``; +inf where the configuration diverged.

    Raises:
        UsageError: the reference itself diverged.
    """
    keys = ["seed", "module", "block", "t"]
    reference = slopes[slopes.configuration == REFERENCE].set_index(keys).slope
    if np.isinf(reference).any():
        raise UsageError(f"the μP reference diverged (non-finite activations); lower {flag('learning_rate')}")
    candidate = slopes[slopes.configuration == configuration].set_index(keys).slope
    both = pd.concat([candidate.rename("candidate"), reference.rename("reference")], axis=1, join="inner").reset_index()
    both = both[both.t >= 2]
    return both.assign(gap=both.candidate - both.reference)[keys + ["gap"]]


def judge(slopes: pd.DataFrame, configuration: str, threshold: float) -> Verdict:
    """Instability, dilution and shrink statistics of ``configuration`` against :data:`REFERENCE`.

    Args:
        slopes: :func:`width_slopes` of the configuration and of the reference (three or more seeds).
        threshold: largest upward gap of a stable configuration.
    """
    gaps = paired_gaps(slopes, configuration)
    split = set(gaps[gaps.block != "all"].module)
    judged = gaps[(gaps.block != "all") | ~gaps.module.isin(split)]  # base/new blocks; unsplit modules whole
    mixed = gaps[(gaps.block == "all") & gaps.module.isin(split)]
    per_seed_step = judged.groupby(["seed", "t"]).gap.max()
    by_step = per_seed_step.groupby(level="t").mean()
    mean_gap = judged.groupby(["module", "block", "t"]).gap.mean()
    module, block, step = mean_gap.idxmax()
    dilution_by_step = mixed.groupby(["seed", "t"]).gap.min().groupby(level="t").mean()  # empty: nothing split
    return Verdict(
        instability=Interval.over_seeds(judged.groupby("seed").gap.max().to_numpy()), threshold=threshold,
        module=str(module), block=str(block), step=int(step), by_step=tuple(float(v) for v in by_step),
        dilution=Interval.over_seeds(mixed.groupby("seed").gap.min().to_numpy()) if len(mixed)
        else Interval(math.nan, math.nan, math.nan, ()),
        dilution_by_step=tuple(float(v) for v in dilution_by_step),
        shrink=Interval.over_seeds(judged.groupby("seed").gap.min().to_numpy()))


@contextmanager
def _recording(model: nn.Module, base_dims: dict[str, int], sink: list[tuple[str, str, float]]) -> Iterator[None]:
    """Forward hooks appending ``(module, block, mean |output|)`` for every module the model calls.

    A module whose output's last dimension differs from ``base_dims[module]`` (its size in a model
    of the base width) is recorded whole and split into its first ``base_dims[module]`` coordinates
    (``base``) and the rest (``new``).
    """
    def hook(name: str):
        def record(_module: nn.Module, _inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                return
            values = output.detach().abs().float().flatten(0, -2)  # (N, D)
            sink.append((name, "all", float(values.mean())))
            base = base_dims.get(name)
            if base is not None and base != values.shape[-1]:
                sink.append((name, "base", float(values[:, :base].mean())))
                sink.append((name, "new", float(values[:, base:].mean())))
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _output_dims(model: nn.Module, inputs: torch.Tensor) -> dict[str, int]:
    """The last dimension of every module's output on ``inputs``."""
    dims: dict[str, int] = {}

    def hook(name: str):
        def record(_module, _inputs, output) -> None:
            if isinstance(output, torch.Tensor):
                dims[name] = output.shape[-1]
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    with torch.no_grad():
        model(inputs)
    for handle in handles:
        handle.remove()
    return dims


def _trajectory(task: LanguageTask, model: nn.Module, use_mup: bool, learning_rate: float,
                batches: list[tuple[torch.Tensor, torch.Tensor]], base_dims: dict[str, int]) -> list[tuple]:
    """``(module, block, t, l1)`` for every step ``t = 1 … len(batches)``, recorded before each Adam step."""
    optimizer = (mup.MuAdam if use_mup else torch.optim.Adam)(model.parameters(), lr=learning_rate)
    rows = []
    for t, batch in enumerate(batches, start=1):
        sink: list[tuple[str, str, float]] = []
        with _recording(model, base_dims, sink):
            loss = task.loss(model, batch)
        rows += [(module, block, t, l1) for module, block, l1 in sink]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return rows


def _train_base(task: LanguageTask, config: CoordCheckConfig, seed: int, first_position: int) -> tuple[nn.Module, BaseSummary]:
    """The warmstart base: μP at ``base_width``, ``base_steps`` MuAdam steps at the check's learning rate."""
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
    """``name -> (builder, whether mup's per-layer Adam is used)``, reference first. Every
    configuration but the control initialises with the reference's seed (paired)."""
    def mu(width: int, seed: int) -> nn.Module:
        return build_model(task, width, config.base_width, seed)

    configurations: dict[str, tuple[Builder, bool]] = {
        REFERENCE: (mu, True),
        "SP": (lambda width, seed: _standard(task, width, seed), False),
        CONTROL: (lambda width, seed: mu(width, _CONTROL_SEED + seed), True),
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

    Example (CPU, a few seconds; prints ``fail pass``)::

        from hpogrow.coordcheck import CoordCheckConfig, run_coordcheck
        result = run_coordcheck(CoordCheckConfig(widths=(32, 64, 128), base_width=16, head_size=16, depth=1,
                                                 seq_len=16, batch_size=4, steps=6, shrinks=()))
        print(result.verdicts["SP"].label, result.verdicts["μP"].label)
    """
    task = LanguageTask(depth=config.depth, head_size=config.head_size, seq_len=config.seq_len, data=config.data)
    seeds = range(config.seed, config.seed + config.seeds)
    batches_per_seed = config.steps * config.batch_size

    def batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:  # [((B, T), (B, T))] × steps
        return [task.batch(seed * batches_per_seed + step * config.batch_size, config.batch_size, torch.device("cpu"))
                for step in range(config.steps)]

    # seed k of every configuration trains on batch slot k; the bases train on batches after all of them
    base_start = (config.seed + config.seeds) * batches_per_seed
    trained = {seed: _train_base(task, config, seed, base_start + seed * config.base_steps * config.batch_size)
               for seed in (seeds if config.shrinks else ())}
    bases = {seed: model for seed, (model, _) in trained.items()}
    base_dims = _output_dims(build_model(task, config.base_width, config.base_width, 0), batches(config.seed)[0][0])
    rows = []
    for name, (builder, use_mup) in _configurations(task, config, bases).items():
        for seed in seeds:
            seed_batches = batches(seed)
            for width in config.widths:
                with torch.random.fork_rng(devices=[]):
                    trajectory = _trajectory(task, builder(width, seed), use_mup, config.learning_rate,
                                             seed_batches, base_dims)
                rows += [(name, seed, width, *row) for row in trajectory]
            if on_progress:
                on_progress(name)
    data = pd.DataFrame(rows, columns=["configuration", "seed", "width", "module", "block", "t", "l1"])
    slopes = width_slopes(data)
    verdicts = gate_on_control({name: judge(slopes, name, config.threshold)
                                for name in data.configuration.unique() if name != REFERENCE})
    return CoordCheckResult(config, data, verdicts, [summary for _, summary in trained.values()])


def gate_on_control(verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
    """``verdicts`` as they are when the μP control passes; otherwise every other configuration's
    verdict made ``undecided`` (``readable=False``): where μP against μP with other seeds cannot
    be told from an instability, neither can anything else (e.g. the pipeline's own geometry,
    1.4 doublings of width, where the control's per-seed values spread 0.51–1.54)."""
    if verdicts[CONTROL].label == "pass":
        return verdicts
    return {name: verdict if name == CONTROL else replace(verdict, readable=False) for name, verdict in verdicts.items()}


def _file_name(name: str) -> str:
    return "coordcheck_" + "".join(c if c.isalnum() or c in ".-" else "_" for c in
                                   name.replace("λ=", "shrink").replace("μ", "mu")) + ".png"


def write_verdicts(result: CoordCheckResult, path: Path) -> Path:
    """``verdicts.json``: the settings, the threshold with how it was fixed, and per configuration
    :meth:`Verdict.to_json`."""
    payload = {"settings": asdict(result.config), "threshold": result.config.threshold,
               "threshold_note": THRESHOLD_NOTE, "dilution_bound": DILUTION_BOUND,
               "bases": [asdict(base) for base in result.bases],
               "configurations": {name: verdict.to_json() for name, verdict in result.verdicts.items()}}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    return path


def write_outputs(result: CoordCheckResult, out: Path) -> list[Path]:
    """``coordcheck.csv`` (every ``l1``), ``verdicts.json`` beside it, and one PNG per configuration.

    A PNG shows, at the last step, mean |activation| against width of the module that decides the
    verdict (base and new blocks, solid; the μP reference, dashed); then per step the largest
    upward gap (seed mean of per-seed maxima) against the threshold, with the per-seed maxima
    and their interval; then the dilution statistic per step against its bound −1.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "coordcheck.csv", write_verdicts(result, out / "verdicts.json")]
    result.data.to_csv(written[0], index=False)
    means = result.data.groupby(["configuration", "module", "block", "t", "width"]).l1.mean()
    last = int(result.data.t.max())
    for name, verdict in result.verdicts.items():
        figure, (scaling, upward, downward) = plt.subplots(1, 3, figsize=(13, 3.8))
        blocks = [b for b in ("base", "new", "all") if (name, verdict.module, b, last) in means.index.droplevel("width")]
        blocks = [b for b in blocks if b != "all"] or ["all"]
        for block, color in zip(blocks, ("tab:blue", "tab:orange")):
            for configuration, style in ((name, "-"), (REFERENCE, "--")):
                rows = means[configuration, verdict.module, block, last]
                scaling.plot(rows.index, rows.to_numpy(), style, color=color, marker=".",
                             label=f"{block} ({'μP reference' if configuration == REFERENCE else name})")
        scaling.set(xscale="log", yscale="log", title=f"{verdict.module}, t={last}", xlabel="width",
                    ylabel="mean |activation|")
        scaling.set_xscale("log", base=2)
        scaling.legend(fontsize=6)
        steps = range(2, 2 + len(verdict.by_step))
        upward.plot(steps, verdict.by_step, marker=".", label="largest upward gap (seed mean)")
        upward.axhline(verdict.threshold, color="red", linestyle=":", label=f"threshold {verdict.threshold:g}")
        finite = [v for v in verdict.instability.per_seed if math.isfinite(v)]
        upward.scatter([steps[-1] + 1] * len(finite), finite, color="black", s=10, label="per-seed maxima")
        if math.isfinite(verdict.instability.high):
            upward.errorbar([steps[-1] + 1], [verdict.instability.mean], color="black", capsize=3,
                            yerr=[[verdict.instability.mean - verdict.instability.low],
                                  [verdict.instability.high - verdict.instability.mean]], label="95% paired interval")
        upward.set(title="instability (blocks, t ≥ 2)", xlabel="step t")
        upward.legend(fontsize=6)
        downward.plot(steps, verdict.dilution_by_step, marker=".", color="tab:green", label="most negative all-coordinate gap")
        downward.axhline(DILUTION_BOUND, color="red", linestyle=":", label="dilution bound −1")
        downward.set(title="dilution (all coordinates)", xlabel="step t")
        downward.legend(fontsize=6)
        instability = verdict.instability
        figure.suptitle(f"{name}: largest upward gap vs paired μP {instability.mean:+.2f} "
                        f"[{instability.low:.2f}, {instability.high:.2f}] at {verdict.module} ({verdict.block}) "
                        f"t={verdict.step}; threshold {verdict.threshold:g} → {verdict.label}; dilution "
                        f"{verdict.dilution.mean:+.2f}{' (beyond −1: flagged)' if verdict.dilution_flagged else ''}",
                        fontsize=9)
        figure.tight_layout()
        path = out / _file_name(name)
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written
