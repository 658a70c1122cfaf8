"""The Optuna record: the one package that names a stored key.

- :mod:`~hpogrow.record.trials`: creates trials and tells their states (base, stage, warmstart and
  scratch alike, whichever executor ran them), with the locks that keep several drivers apart.
"""

from hpogrow.record.trials import (
    ABANDONED, CLAIM_LOCK, TARGET_LOCK, add_finished, claim_base_trial, counts_towards_total, fail, fail_abandoned,
    finish, report, start_target_trial, summary_attrs,
)

__all__ = ["ABANDONED", "CLAIM_LOCK", "TARGET_LOCK", "add_finished", "claim_base_trial", "counts_towards_total", "fail",
           "fail_abandoned", "finish", "report", "start_target_trial", "summary_attrs"]
