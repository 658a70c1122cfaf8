"""The worker side of a Ray Tune base trial: a thin adapter from :class:`hpogrow.runs.BaseTrial`
to ``ray.tune.report``.

- The scheduler's clock is ``fidelity``: tokens seen in units of the smallest rung, so that rung
  ``k`` sits at ``rf**k`` units and every batch size reaches each rung at exactly its tokens.
- Events that carry a checkpoint folder (rungs, and the full budget) are reported with it as a
  Ray checkpoint; a trial HyperBand paused and promotes later resumes from it through
  ``tune.get_checkpoint()``, never from step 0.
- A non-finite loss ends the trial from inside: one last report with ``diverged=True`` and the
  reason, at the clock of the previous evaluation (so no scheduler takes it for a rung).
- What the record needs travels as ``summary`` (a :class:`hpogrow.runs.RunSummary` as JSON);
  the driver's :class:`hpogrow.search.executors.ray_bridge.OptunaBridge` writes it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpogrow.errors import TrainingDiverged
from hpogrow.runs import BaseTrial, TrialEvent
from hpogrow.tasks import Task


@dataclass(frozen=True)
class TrialSetup:
    """What every Ray trial of one search shares (pickled once into Ray's object store)."""

    base_trial: BaseTrial
    rungs: tuple[int, ...]
    """Token milestones of the scheduler, increasing; the last is the full budget."""

    def fidelity(self, tokens_seen: int) -> float:
        return tokens_seen / self.rungs[0]


_TASKS_IN_THIS_WORKER: dict[str, Task] = {}
"""Tasks already used in this worker process, by their pickled state. A reused Ray actor runs
many trials; each gets a fresh copy of the task, which for the LM would reload its corpus."""


def task_loaded_once(task: Task) -> Task:
    from ray import cloudpickle

    try:
        key = hashlib.sha256(cloudpickle.dumps(task)).hexdigest()
    except Exception:  # a task that does not pickle twice the same way is simply not shared
        return task
    return _TASKS_IN_THIS_WORKER.setdefault(key, task)


def run_ray_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Train one base trial as a Ray Tune function trainable (see the module docstring)."""
    import ray
    from ray import tune

    base_trial = replace(setup.base_trial, task=task_loaded_once(setup.base_trial.task))
    params, number = config["params"], int(config["trial_number"])
    node = {"node": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    last = {"tokens": 0, "fidelity": 0.0}

    def report(event: TrialEvent) -> bool:
        evaluation = event.evaluation
        last.update(tokens=evaluation.tokens_seen, fidelity=setup.fidelity(evaluation.tokens_seen))
        metrics = {"val_loss": evaluation.val_loss, "train_loss": evaluation.train_loss,
                   "tokens_seen": evaluation.tokens_seen, "step": evaluation.step, "fidelity": last["fidelity"],
                   "complete": event.complete, "resumed_from": event.resumed_from, "trial_number": number, **node,
                   # one string: Tune flattens nested dicts before its searcher sees a result
                   "summary": json.dumps(event.summary.as_dict())}
        if event.checkpoint is not None:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(event.checkpoint)))
        else:
            tune.report(metrics)
        return False  # the scheduler stops trials; the loop itself never does

    restored = tune.get_checkpoint()
    try:
        if restored is None:
            base_trial.run(params, number, report, rung_tokens=setup.rungs[:-1])
        else:
            with restored.as_directory() as folder:
                base_trial.run(params, number, report, resume=Path(folder), rung_tokens=setup.rungs[:-1])
    except TrainingDiverged as error:
        tune.report({"val_loss": math.inf, "tokens_seen": last["tokens"], "fidelity": last["fidelity"],
                     "complete": False, "diverged": True, "fail_reason": str(error),
                     "diverged_at_tokens": error.tokens_seen, "trial_number": number, **node})
