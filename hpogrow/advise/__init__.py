"""Growth advice from fitted scaling laws (paper 000): should I grow, by how much, what will it save?

1. A ladder of cheap runs (:mod:`.ladder`), trained side by side in ``workers`` processes: μP
   from scratch at several widths and seeds, each run read at budgets spanning ``budget_span``
   (≥ 16×) in tokens (on the constant schedule a run's loss after D tokens is that of a run with
   budget D); and warmstart/scratch pairs from bases at the smallest width (one base per budget
   and seed) grown by several g, at several budgets in tokens per parameter. Recorded in the
   study ``{task}-advice``; a rerun reuses what it finds.
2. The loss law L(N, D) = E + A/N^α + B/D^β, fitted by Hoffmann et al.'s approach 3
   (:mod:`.scaling`), E held at the data's known floor where there is one, with bootstrap
   intervals over runs (each resample refitted on its own); the gain model, log token speedup
   linear in log g and log tokens/param (:mod:`.gain`), with bootstrap intervals over bases.
3. Out of sample (:mod:`.advice`): each width's curve predicted by the law fitted without it, in
   units of the seed spread, beside L(D) alone and the next smaller width's curve; the gain model
   fitted without one g predicts that g's measured speedup.
4. For a target size and budget: scratch's loss, each g's warmstart loss and speedup counting
   the base, the recommended g, the largest g beyond which scratch is cheaper, and how far the
   target lies beyond what was measured; recorded as the study attribute ``advice`` with two
   figures (:mod:`.run`, :mod:`.view`).
"""

import importlib
from typing import Any

_EXPORTS = {  # imported on first use: the command line reads AdviseConfig's fields without numpy or torch
    "Advice": "advice", "WidthHoldout": "advice", "Prediction": "advice", "AdviseConfig": "config",
    "GainModel": "gain", "fit_gain": "gain", "advise": "run", "auto_growth_factor": "run", "stored_advice": "run",
    "LossLaw": "scaling", "fit_loss_law": "scaling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hpogrow.advise.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hpogrow.advise' has no attribute {name!r}")
