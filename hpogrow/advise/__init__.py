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

from hpogrow.advise.advice import Advice, LossHoldout, Prediction
from hpogrow.advise.config import AdviseConfig
from hpogrow.advise.gain import GainModel, fit_gain
from hpogrow.advise.run import advise, auto_growth_factor, stored_advice
from hpogrow.advise.scaling import LossLaw, fit_loss_law

__all__ = ["Advice", "AdviseConfig", "GainModel", "LossHoldout", "LossLaw", "Prediction", "advise", "auto_growth_factor", "fit_gain",
           "fit_loss_law", "stored_advice"]
