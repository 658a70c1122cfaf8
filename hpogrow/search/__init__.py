"""The search: Optuna (and Ray Tune) trials at the base width, the winner grown, and the target
pairs (warmstarted against scratch) with their speedup.

- :mod:`~hpogrow.search.config`: :class:`SearchConfig`, one field per ``hpogrow search`` flag;
- :mod:`~hpogrow.search.plan`: widths, growth steps, budgets and rungs (:func:`make_plan`);
- :mod:`~hpogrow.search.schedule` and :mod:`~hpogrow.search.halving`: rungs in tokens, and the
  successive-halving design and rule;
- :mod:`~hpogrow.search.pipeline`: :func:`run_pipeline`, the whole search;
- :mod:`~hpogrow.search.target`: the warmstart/scratch pairs and their speedup;
- :mod:`~hpogrow.search.executors`: who runs the trials (in process, or Ray Tune);
- :mod:`~hpogrow.search.space`, :mod:`~hpogrow.search.sampler`, :mod:`~hpogrow.search.report`.

Only the config is imported here: ``hpogrow --help`` builds its parser from it without torch.
"""

from hpogrow.search.config import SearchConfig

__all__ = ["SearchConfig"]
