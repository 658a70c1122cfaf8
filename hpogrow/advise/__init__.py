"""Growth advice from fitted scaling laws (paper 000): should I grow, by how much, what will it save?

1. A ladder of cheap runs (:mod:`.ladder`): μP from scratch at several widths (on a constant
   schedule each run's curve gives a row of token budgets), and warmstart/scratch pairs from a
   base at the smallest width grown by several g, at several budgets in tokens per parameter,
   several seeds. Recorded in the study ``{task}-advice``; a rerun reuses what it finds.
2. The loss law L(N, D) = E + A/N^α + B/D^β, fitted by Hoffmann et al.'s approach 3
   (:mod:`.scaling`), with bootstrap intervals over runs; the gain model, log token speedup
   linear in log g and log tokens/param (:mod:`.gain`), with bootstrap intervals over pairs.
3. Out of sample (:mod:`.advice`): the law fitted without the largest width predicts that
   width's loss; the gain model fitted without one g predicts that g's measured speedup.
4. For a target size and budget: scratch's loss, each g's warmstart loss and speedup counting
   the base, the recommended g and the largest g beyond which scratch is cheaper; recorded as
   the study attribute ``advice`` with two figures (:mod:`.run`, :mod:`.view`).
"""

import importlib
from typing import Any

_EXPORTS = {  # imported on first use: the command line reads AdviseConfig's fields without numpy or torch
    "Advice": "advice", "LossHoldout": "advice", "Prediction": "advice", "AdviseConfig": "config",
    "GainModel": "gain", "fit_gain": "gain", "advise": "run", "auto_growth_factor": "run", "stored_advice": "run",
    "LossLaw": "scaling", "fit_loss_law": "scaling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hpogrow.advise.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hpogrow.advise' has no attribute {name!r}")
