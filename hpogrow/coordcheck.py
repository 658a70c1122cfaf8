"""μP coordinate checks (mup's ``get_coord_data``) for SP, μP and warmstarted μP.

For each configuration and width, a few Adam steps are taken on one fixed batch and the mean
absolute activation (``l1``) of every module's output is recorded (mup's coordinate check).
Under μP the activations stay flat across width; under standard parameterization (SP) some grow
with width. Paper 002 (RQ3, Fig. 3 and 7) finds warmstarted μP stays μP-like for λ ≤ 0.6.

The verdict for a configuration is the steepest log-log slope of ``l1`` against width over all
modules at the last step: ``flat`` when below ``flat_slope`` (activations grow slower than
``width^flat_slope``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mup
import numpy as np
import pandas as pd
import torch
from mup.coord_check import get_coord_data
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.growth import shrink_zero_pad_perturb
from hpogrow.parametrize import build_model
from hpogrow.tasks import LanguageTask
from hpogrow.train import TrainConfig, train


@dataclass(frozen=True)
class CoordCheckConfig:
    """What to check; defaults run on a 2-core CPU in about a minute."""

    widths: tuple[int, ...] = (64, 128, 256, 512)
    """Widths to compare; the first is the μP base width and the warmstart base."""
    shrinks: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    """λ values of the warmstarted configurations."""
    depth: int = 2
    head_size: int = 32
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 4
    """Adam steps per model (one plot panel each)."""
    seeds: int = 2
    learning_rate: float = 1e-2
    base_steps: int = 100
    """Training steps of the base model that warmstarted configurations grow from."""
    flat_slope: float = 0.35
    """Verdict threshold on the steepest log-log slope of l1 against width (0.35: activations
    grow by less than 2^0.35 ≈ 1.27× per doubling of width)."""
    data: str | None = None

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or sorted(set(self.widths)) != list(self.widths):
            raise UsageError(f"--widths {list(self.widths)}: give at least two increasing widths")
        if any(w % self.head_size for w in self.widths):
            raise UsageError(f"--widths {list(self.widths)}: every width must be a multiple of the head size {self.head_size}")
        if any(not 0 <= s <= 1 for s in self.shrinks):
            raise UsageError(f"--shrinks {list(self.shrinks)}: λ must lie in [0, 1]")


@dataclass
class CoordCheckResult:
    data: pd.DataFrame
    """Columns ``config, width, module, t, l1`` (mean over seeds is taken when judging)."""
    verdicts: dict[str, tuple[float, str]] = field(default_factory=dict)
    """``config -> (steepest slope, module)``."""


def _seed() -> int:
    return int(torch.randint(0, 2**31 - 1, ()))  # mup seeds the global RNG per coord-check seed


def _standard_model(task: LanguageTask, width: int) -> nn.Module:
    """SP: PyTorch's default init, no width multipliers (base shapes = its own shapes)."""
    model = task.build_model(width)
    return mup.set_base_shapes(model, None)


def slope(frame: pd.DataFrame) -> tuple[float, str]:
    """Steepest log2-log2 slope of mean l1 against width, over modules, at the last step."""
    last = frame[(frame.t == frame.t.max()) & (frame.module != "")]
    means = last.groupby(["module", "width"]).l1.mean().reset_index()
    steepest, where = -math.inf, ""
    for module, rows in means.groupby("module"):
        if (rows.l1 <= 0).any() or len(rows) < 2:
            continue
        fitted = np.polyfit(np.log2(rows.width), np.log2(rows.l1), 1)[0]
        if fitted > steepest:
            steepest, where = float(fitted), str(module)
    return steepest, where


def run_coordcheck(config: CoordCheckConfig = CoordCheckConfig()) -> CoordCheckResult:
    """Coordinate data and verdicts for SP, μP and warmstarted μP at each λ."""
    task = LanguageTask(depth=config.depth, head_size=config.head_size, seq_len=config.seq_len, data=config.data)
    base_width = config.widths[0]
    inputs, targets = task.batch(0, config.batch_size, torch.device("cpu"))
    loader = [(inputs, targets.reshape(-1))]
    base = build_model(task, base_width, base_width, seed=0)
    train(base, task, TrainConfig(learning_rate=config.learning_rate, batch_size=config.batch_size,
                                  tokens=config.base_steps * config.batch_size * config.seq_len,
                                  evaluations=1, device="cpu"),
          state=_fresh_position(config))
    constructors = {
        "SP": (False, lambda w: lambda: _standard_model(task, w)),
        "μP": (True, lambda w: lambda: build_model(task, w, base_width, _seed())),
    }
    for shrink in config.shrinks:
        constructors[f"warmstart λ={shrink}"] = (True, lambda w, s=shrink: lambda: shrink_zero_pad_perturb(
            base, build_model(task, w, base_width, _seed()), shrink=s))
    frames = []
    for name, (use_mup, make) in constructors.items():
        frame = get_coord_data({w: make(w) for w in config.widths}, loader, optimizer="adam", lr=config.learning_rate,
                               mup=use_mup, nsteps=config.steps, nseeds=config.seeds, cuda=False,
                               flatten_output=True, show_progress=False)
        frame["config"] = name
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    return CoordCheckResult(data, {name: slope(data[data.config == name]) for name in constructors})


def _fresh_position(config: CoordCheckConfig):
    from hpogrow.train import TrainState

    return TrainState(data_position=config.batch_size)  # the base never trains on the checked batch


def write_outputs(result: CoordCheckResult, out: Path) -> list[Path]:
    """``coordcheck.csv`` and one PNG per configuration: one panel per step, mean ``l1`` of every
    module against width on log-log axes (base 2), as mup's ``plot_coord_data`` draws it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "coordcheck.csv"]
    result.data.drop(columns=["optimizer", "lr"], errors="ignore").to_csv(written[0], index=False)
    for name in result.data.config.unique():
        frame = result.data[(result.data.config == name) & (result.data.module != "")]
        steps = sorted(frame.t.unique())
        figure, axes = plt.subplots(1, len(steps), figsize=(4 * len(steps), 3.6), sharey=True, squeeze=False)
        for axis, step in zip(axes[0], steps):
            means = frame[frame.t == step].groupby(["module", "width"]).l1.mean().reset_index()
            for module, rows in means.groupby("module"):
                if (rows.l1 > 0).all():
                    axis.plot(rows.width, rows.l1, marker=".", label=module)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log", base=2)
            axis.set_title(f"t={step}")
            axis.set_xlabel("width")
        axes[0][0].set_ylabel("mean |activation| (l1)")
        axes[0][-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
        steepest, module = result.verdicts[name]
        figure.suptitle(f"{name}: steepest slope {steepest:.2f} ({module})")
        figure.tight_layout()
        path = out / f"coordcheck_{name.replace(' ', '_').replace('λ=', 'shrink').replace('μ', 'mu')}.png"
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written
