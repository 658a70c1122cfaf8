"""μTransfer check: does the learning rate tuned at the base width stay optimal at larger widths?

1. For every parameterization (μP: :func:`hpogrow.parametrize.build_model` with mup's AdamW;
   SP: :func:`hpogrow.parametrize.build_standard_model`, PyTorch's init and plain Adam), width,
   learning rate of a log grid and seed, train one run from scratch. Every run sees the same
   examples, batch size and token budget (equal-token judging). (:mod:`.sweep`)
2. Read each width's optimum: the grid argmin of the seed-mean final loss. A diverged run
   counts as the worst loss (+inf), so a learning rate at which any seed diverges cannot be the
   optimum; diverged runs are counted, never dropped. A parabola through the argmin and its two
   neighbours (in log learning rate) refines the optimum for the drift figure. (:mod:`.verdict`)
3. Verdict: the drift (octaves of learning rate per doubling of width, least squares over
   widths on the refined optima) read from each seed alone gets a 95% t-interval over seeds,
   judged against ``max_drift`` stated in advance: ``pass`` inside ±bound, ``fail`` wholly
   outside, ``undecided`` otherwise. μP should pass; SP should fail. (:mod:`.verdict`)
4. Record one trial per run (``role=transfer``) in the study ``{task}-transfer``; a rerun
   reuses the runs it finds there. The figure (final loss against learning rate, one curve per
   width, μP and SP side by side) goes under ``{workdir}/plots`` and into the study as an
   artifact, the verdict into the study attribute ``transfer`` and the dashboard note.
   (:mod:`.record`, :mod:`.view`)
"""

import importlib
from typing import Any

_EXPORTS = {  # imported on first use: the command line reads TransferConfig's fields without numpy or torch
    "TransferConfig": "config", "run_transfercheck": "sweep", "TransferResult": "verdict", "TransferRun": "verdict",
    "Verdict": "verdict", "WidthOptimum": "verdict", "judge": "verdict", "plot_transfer": "view",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hpogrow.transfer.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hpogrow.transfer' has no attribute {name!r}")
