"""The Optuna record: the one package that names a stored key.

- :mod:`~hpogrow.record.run`: :class:`RunRecord`, what a trial records about its run (identity,
  summary, facts, growth lineage, the pair's speedup), and :class:`SpeedupRecord`;
- :mod:`~hpogrow.record.lineage`: :class:`GrowthLineage`, also written into grown checkpoints;
- :mod:`~hpogrow.record.study`: a study's attributes (signature, speedup, plot, advice, transfer);
- :mod:`~hpogrow.record.trials`: creates trials and tells their states, with the locks that keep
  several drivers apart;
- :mod:`~hpogrow.record.codec`: field names are the stored keys; nested records are flattened.

Names are imported on first use, so :mod:`hpogrow.growth` can write a lineage without Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GrowthLineage": "lineage", "RunRecord": "run", "RunFacts": "run", "SpeedupRecord": "run",
    "BASE": "run", "WARMSTART": "run", "SCRATCH": "run", "REPLICATE": "run", "summary_attrs": "run",
    "CLAIM_LOCK": "trials", "TARGET_LOCK": "trials", "add_finished": "trials", "adopt": "trials", "claim_base_trial": "trials",
    "counts_towards_total": "trials", "fail": "trials", "fail_abandoned": "trials", "fail_waiting": "trials",
    "finish": "trials",
    "mark_abandoned": "trials", "report": "trials", "start_target_trial": "trials", "write": "trials",
    "BaseSignature": "study", "TargetSignature": "study", "signature_dict": "study",
    "read_signature": "study", "write_signature": "study",
    "read_speedup": "study", "write_speedup": "study", "read_plot": "study", "write_plot": "study",
    "read_plotted_trials": "study", "write_plotted_trials": "study",
    "read_scheduler": "study", "write_scheduler": "study", "read_advice": "study", "write_advice": "study", "read_transfer": "study", "write_transfer": "study",
    "is_diverged": "study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hpogrow.record.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hpogrow.record' has no attribute {name!r}")
