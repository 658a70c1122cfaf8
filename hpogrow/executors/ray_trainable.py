"""The worker side of a Ray Tune base trial: train, report every evaluation, checkpoint at rungs.

:func:`run_ray_trial` runs inside a Ray worker. It knows nothing about Optuna: it reports each
held-out evaluation through ``ray.tune.report`` and leaves the record to the driver's
:class:`hpogrow.executors.ray_bridge.OptunaBridge`.

- The scheduler's clock is ``fidelity``: tokens seen in units of the smallest rung
  (``budget / reduction_factor**rungs`` tokens), so that rung ``k`` sits at ``rf**k`` units.
- The first evaluation at or past a rung carries a Ray checkpoint (an hpogrow checkpoint folder:
  weights, optimizer state, tokens seen, data position). A trial paused there by HyperBand and
  promoted later continues from it through ``tune.get_checkpoint()``, never from step 0.
- The evaluation at the full budget first writes the hpogrow checkpoint folder that the pipeline
  grows (``{checkpoint_dir}/trial-{number}``) and reports it with ``complete=True``.
- A non-finite loss (:class:`hpogrow.errors.TrainingDiverged`) ends the trial from inside: one
  last report with ``diverged=True`` and the reason, then the function returns.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.errors import TrainingDiverged
from hpogrow.parametrize import build_model, count_parameters, resolve_device
from hpogrow.runs import BaseTrial
from hpogrow.tasks import Task
from hpogrow.train import Evaluation, TrainState, make_optimizer, total_steps, train


@dataclass(frozen=True)
class TrialSetup:
    """What every Ray trial of one search shares (pickled once into Ray's object store)."""

    base_trial: BaseTrial
    """Task, base width, training template and checkpoint folder of the search."""
    reduction_factor: int
    """Ratio between consecutive rungs."""
    rungs: int
    """Rungs below the full budget; the smallest is ``budget / reduction_factor**rungs``."""

    @property
    def fidelity_scale(self) -> int:
        """Fidelity units in the full budget."""
        return self.reduction_factor ** self.rungs

    @property
    def milestones(self) -> list[int]:
        """Rung boundaries in fidelity units: 1, rf, rf², …, rf**rungs (the full budget)."""
        return [self.reduction_factor ** k for k in range(self.rungs + 1)]

    def fidelity(self, tokens_seen: int, budget: int) -> float:
        return tokens_seen * self.fidelity_scale / budget


_TASKS_IN_THIS_WORKER: dict[str, Task] = {}
"""Tasks already used in this worker process, by their pickled state. A reused Ray actor runs
many trials; each gets a fresh copy of the task, which for the LM would reload its corpus."""


def _task_loaded_once(task: Task) -> Task:
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

    base = setup.base_trial
    params, number = config["params"], int(config["trial_number"])
    train_config = replace(base.template, learning_rate=params["learning_rate"], batch_size=params["batch_size"])
    task, budget = _task_loaded_once(base.task), train_config.tokens
    steps = total_steps(task, train_config)
    device = resolve_device(train_config.device)

    # 1. A fresh μP model, or the state a paused trial checkpointed at its last rung.
    restored = tune.get_checkpoint()
    saved_metrics: dict[str, Any] = {}
    if restored is None:
        model = build_model(task, base.base_width, base.base_width, train_config.seed, device)
        state, optimizer_state = TrainState(), None
    else:
        with restored.as_directory() as folder:
            source = read_checkpoint(Path(folder))
            model, _ = load_model(source, task, device)
            state, optimizer_state, saved_metrics = source.state, load_optimizer_state(source), source.metrics
    optimizer = make_optimizer(model, train_config)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    counts = count_parameters(model)
    resumed_from = state.tokens_seen
    initial_loss = saved_metrics.get("initial_loss")
    last = {"tokens": state.tokens_seen, "fidelity": setup.fidelity(state.tokens_seen, budget)}
    node = ray.get_runtime_context().get_node_id()  # the Ray node this trial runs on
    started = time.perf_counter()

    def metrics_for(evaluation: Evaluation, data_position: int) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - started, 1e-9)
        return {
            "val_loss": evaluation.val_loss, "train_loss": evaluation.train_loss,
            "tokens_seen": evaluation.tokens_seen, "step": evaluation.step,
            "fidelity": setup.fidelity(evaluation.tokens_seen, budget),
            "data_position": data_position, "complete": evaluation.step >= steps,
            "initial_loss": initial_loss, "n_params": counts.total, "compute_params": counts.compute,
            "tokens_per_second": round((evaluation.tokens_seen - resumed_from) / elapsed, 1),
            "resumed_from": resumed_from, "trial_number": number, "device": str(device), "node": node,
        }

    def save(path: Path, evaluation: Evaluation, metrics: dict[str, Any]) -> Path:
        train_state = TrainState(step=evaluation.step, tokens_seen=evaluation.tokens_seen,
                                 data_position=metrics["data_position"])
        return save_checkpoint(path, model, task=task, width=base.base_width, base_width=base.base_width,
                               seed=train_config.seed, state=train_state, train_config=train_config,
                               optimizer=optimizer, metrics={
                                   "val_loss": evaluation.val_loss, "initial_loss": initial_loss,
                                   "n_params": counts.total, "compute_params": counts.compute,
                                   "flops": 6.0 * counts.compute * evaluation.tokens_seen})

    # 2. Every evaluation is reported; rung crossings and the full budget carry a checkpoint.
    def report(evaluation: Evaluation) -> bool:
        nonlocal initial_loss
        if initial_loss is None:
            initial_loss = evaluation.val_loss
        position = state.data_position + (evaluation.step - state.step) * train_config.batch_size
        metrics = metrics_for(evaluation, position)
        crossed = any(last["fidelity"] < milestone <= metrics["fidelity"] for milestone in setup.milestones)
        last.update(tokens=evaluation.tokens_seen, fidelity=metrics["fidelity"])
        if metrics["complete"]:
            folder = save(base.checkpoint_dir / f"trial-{number}", evaluation, metrics)
            metrics["checkpoint"] = str(folder)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        elif crossed:
            with tempfile.TemporaryDirectory(prefix="hpogrow-rung-") as staging:
                folder = save(Path(staging) / "run", evaluation, metrics)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        else:
            tune.report(metrics)
        return False  # the scheduler stops trials; the loop itself never does

    # 3. A trial promoted after it already ran its full budget only repeats its last report.
    if state.step >= steps:
        final = Evaluation(state.step, state.tokens_seen, saved_metrics["val_loss"], None)
        metrics = metrics_for(final, state.data_position)
        metrics["checkpoint"] = str(base.checkpoint_dir / f"trial-{number}")
        tune.report(metrics)
        return
    try:
        train(model, task, train_config, state=state, optimizer=optimizer, report=report)
    except TrainingDiverged as error:
        # Reported at the clock of the previous evaluation, so no scheduler takes it for a rung.
        tune.report({"val_loss": math.inf, "tokens_seen": last["tokens"], "fidelity": last["fidelity"],
                     "complete": False, "diverged": True, "fail_reason": str(error),
                     "diverged_at_tokens": error.tokens_seen, "n_params": counts.total,
                     "compute_params": counts.compute, "initial_loss": initial_loss,
                     "resumed_from": resumed_from, "trial_number": number})
