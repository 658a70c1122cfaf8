"""One target run on several data-parallel workers: Ray Train (V2) with DDP.

Each of ``workers`` Ray Train workers calls the run's picklable closure, ``run(report, None)``;
:func:`hpogrow.train.train` finds the process group Ray Train started (gloo on CPU, NCCL on GPU)
and trains data-parallel (:mod:`hpogrow.distributed`): every rank sees the same curve and stops
with the others, and rank 0 alone writes the run's checkpoint.

- **Evaluations** go, as they happen, to ``on_evaluation`` on rank 0 (the executor puts them on a
  Ray queue for the driver's progress), and every rank calls ``ray.train.report`` at each of
  them: a barrier, which every rank reaches the same number of times because the loop is in
  lockstep.
- **The outcome** comes back as Ray Train's checkpoint: rank 0 pickles its
  :class:`~hpogrow.runs.RunOutcome` (or the :class:`~hpogrow.errors.TrainingDiverged` it raised)
  into the run's last report, which Ray persists under ``storage_path/name``; the caller reads it
  from ``Result.checkpoint``. Ray keeps that checkpoint across worker restarts and drivers: a
  worker group started again after the outcome was reported, or a later fit of the same ``name``,
  finds it with ``ray.train.get_checkpoint()`` and returns it without training again. So a
  ``name`` must never be shared by two runs: the Ray executor gives every fit a fresh one, and a
  run's progress across fits (a driver killed and started again) lives in its partial
  checkpoint (:mod:`hpogrow.resume`).
- **Failures.** A worker that dies is replaced, and the group calls ``run(report, None)`` again
  (up to ``max_failures`` times); the run's own checkpoints decide where it continues. A
  divergence is an answer, not a failure: it is caught in the worker and reported as the outcome,
  so Ray does not retry it, and raised in the caller.
- **Storage.** ``storage_path`` must be a folder every node reaches under that path (NFS, or any
  folder on a single machine); the workers write there and the driver reads there.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpogrow import distributed
from hpogrow.errors import PipelineError, TrainingDiverged, UsageError
from hpogrow.runs import RunOutcome
from hpogrow.search.executors.base import Run
from hpogrow.train import Evaluation

_OUTCOME = "outcome.pkl"


def fit_data_parallel(run: Run, workers: int, *, use_gpu: bool, cpus_per_worker: float, gpus_per_worker: float,
                      storage_path: str, name: str, max_failures: int,
                      on_evaluation: Callable[[Evaluation], None]) -> RunOutcome:
    """Train ``run`` on ``workers`` DDP workers with Ray Train and return rank 0's outcome, with
    ``outcome.extra["workers"] = workers``. Ray must be initialised (or is started by Ray Train).

    Example (CPU, a local Ray runtime, under a minute)::

        import functools, ray
        from hpogrow import FourierTask, TrainConfig
        from hpogrow.runs import run_scratch
        from hpogrow.search.executors.ray_train import fit_data_parallel
        ray.init(num_cpus=4)
        run = functools.partial(run_scratch, FourierTask(modes=64), 32, 16,
                                TrainConfig(1e-2, 32, tokens=32 * 16, evaluations=4, device="cpu"), 0, None)
        outcome = fit_data_parallel(run, 2, use_gpu=False, cpus_per_worker=1, gpus_per_worker=0,
                                    storage_path="/tmp/hp-ray", name="scratch-w32", max_failures=1,
                                    on_evaluation=print)

    Args:
        run: the target run, called as ``run(report, None)`` on every worker.
        workers: data-parallel workers (ranks); the batch size must be a multiple of it.
        use_gpu: one NCCL worker per GPU share; else gloo on CPU.
        cpus_per_worker: CPUs Ray reserves for each worker.
        gpus_per_worker: GPUs Ray reserves for each worker (with ``use_gpu``).
        storage_path: a folder all nodes share; the run's Ray record goes to ``storage_path/name``.
        name: the Ray Train run's name, which identifies the run (see the module docstring).
        max_failures: worker-group restarts allowed after a worker dies.
        on_evaluation: called on rank 0 with each evaluation as it happens (picklable).

    Raises:
        TrainingDiverged: the run's loss became non-finite (not retried).
        PipelineError: the run failed in Ray Train more than ``max_failures`` times.
        UsageError: a worker count or resource Ray cannot use.
    """
    if workers < 1:
        raise UsageError(f"workers per run {workers}: need at least 1")
    if use_gpu and not gpus_per_worker > 0:
        raise UsageError(f"GPUs per worker {gpus_per_worker}: must be positive to train on GPUs")
    import ray.train
    from ray.train.torch import TorchTrainer

    resources: dict[str, float] = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if use_gpu else {})}
    trainer = TorchTrainer(
        _train_worker, train_loop_config={"run": run, "on_evaluation": on_evaluation},
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=ray.train.RunConfig(name=name, storage_path=str(storage_path),
                                       failure_config=ray.train.FailureConfig(max_failures=max_failures)))
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as error:
        raise PipelineError(f"target run {name} failed in Ray Train: "
                            f"{str(error).strip().splitlines()[-1][:300]}") from None
    with result.checkpoint.as_directory() as folder:
        outcome: RunOutcome | TrainingDiverged = pickle.loads((Path(folder) / _OUTCOME).read_bytes())
    if isinstance(outcome, TrainingDiverged):
        raise outcome
    outcome.extra["workers"] = workers
    return outcome


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the run (unless an earlier attempt already reported its outcome),
    every evaluation reported by every rank, and rank 0's outcome reported as the checkpoint."""
    import ray.train

    if ray.train.get_checkpoint() is not None:  # the outcome is already in the run's storage
        return
    parallel = distributed.current()
    on_evaluation: Callable[[Evaluation], None] = config["on_evaluation"]

    def report(evaluation: Evaluation) -> None:
        if parallel.chief:
            on_evaluation(evaluation)
        ray.train.report({"step": evaluation.step, "tokens_seen": evaluation.tokens_seen,
                          "val_loss": evaluation.val_loss})

    try:
        outcome: RunOutcome | TrainingDiverged = config["run"](report, None)
    except TrainingDiverged as error:  # every rank diverges at the same step: the loop is in lockstep
        outcome = error
    with tempfile.TemporaryDirectory(prefix="hpogrow-outcome-") as folder:
        checkpoint = None
        if parallel.chief:
            (Path(folder) / _OUTCOME).write_bytes(pickle.dumps(outcome))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"diverged": isinstance(outcome, TrainingDiverged)}, checkpoint=checkpoint)
