"""The executor extension point: who runs the base trials of a study."""

from __future__ import annotations

from abc import ABC, abstractmethod

import optuna

from hpogrow.runs import BaseTrial
from hpogrow.space import SearchSpace


class Executor(ABC):
    """Runs ``n_trials`` new trials of ``study`` with ``run_trial`` and records them.

    Implementations must record every evaluation as an intermediate value with step = tokens
    seen, tell COMPLETE only for trials that ran their full budget, PRUNED for trials stopped
    early, and FAIL (with a ``fail_reason``) for diverged ones, and set the user attributes
    ``role``, ``width``, ``n_params``, ``tokens``, ``flops``, ``fidelity_reached`` and, for
    complete trials, ``checkpoint``.
    """

    @abstractmethod
    def run(self, study: optuna.Study, space: SearchSpace, n_trials: int, run_trial: BaseTrial,
            progress=None) -> None:
        """Run and record the trials; return when all have ended."""
