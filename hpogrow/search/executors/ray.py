"""Base trials as Ray Tune trials under ASHA or HyperBand, recorded truthfully in Optuna; the
target runs as concurrent Ray tasks.

Design:

- **Fidelity is tokens, the same for every batch size.** The rung plan is ``budget / rf**K, …,
  budget / rf, budget`` tokens (with the defaults rf = 2 and K = 3 rungs below the budget: the
  papers' 2.5 → 5 → 10 → 20 tokens/parameter at a 20 tokens/parameter budget). The budget is
  rounded so that every rung is a whole number of steps of the largest batch size (and so of
  every smaller power of two), and every trial evaluates exactly at every rung: trials of
  different batch sizes are compared at the same token counts. K is lowered only when the
  smallest rung would be less than one step of the largest batch. Trials report ``fidelity`` =
  tokens seen in units of the smallest rung, and both schedulers use it as ``time_attr`` with
  ``max_t = rf**K``: Ray's HyperBand derives its number of brackets from ``max_t``, so raw token
  counts would give it dozens of brackets.
- **The record** is kept by :class:`hpogrow.search.executors.ray_bridge.OptunaBridge` in the driver (see
  there for how each Optuna state is decided); workers never touch the study.
- **Checkpoints**: trials checkpoint at rung boundaries (:mod:`hpogrow.search.executors.ray_trainable`);
  Ray keeps the latest ``checkpoints_to_keep`` per trial while the experiment runs, which is
  all a paused trial needs to continue, and they are deleted when the experiment ends. Full-budget
  trials write their hpogrow checkpoint folder outside Ray's storage, at the path their
  ``checkpoint`` user attribute names; that is what the pipeline grows. On a multi-node cluster
  both the Ray storage path and hpogrow's work folder must be on shared storage.
- **Resume** uses a fresh Tuner for the trials still missing, not ``Tuner.restore``. The Optuna
  study is the single source of truth: trials are claimed there (:func:`hpogrow.record.claim_base_trial`),
  trials a killed driver left RUNNING are marked FAIL (abandoned) when the next claim sees that
  their driver is dead, and a new experiment asks only for the missing trials. A
  restored Tuner would replay its own searcher state beside the study's and re-run or duplicate
  the interrupted trials (docs/method.md, "Optuna and Ray Tune"), and a restored experiment needs the same trainable object,
  which a new process does not have.
- **Target runs** (:meth:`RayExecutor.submit`): the warmstarted run and the scratch baseline
  are Ray tasks with the same per-trial resources, started together so they train concurrently
  when the cluster has room; with ``workers_per_run`` N > 1 each is a Ray Train run of N DDP
  workers (:mod:`hpogrow.search.executors.ray_train`), each worker holding a trial's resources,
  so one run holds N × them and Ray starts a run only when all of its workers fit (target runs
  never oversubscribe the cluster; ``max_concurrent`` counts base trials only). Their
  evaluations come back through a Ray queue as they happen, and the driver writes them to the
  study at once (a live curve) and moves its progress bars. A task whose worker or node dies is
  tried again, a Ray Train worker group restarted, and the run continues from its partial
  checkpoint (:mod:`hpogrow.resume`).
- **Concurrency**: ``max_concurrent`` caps the trials Tune asks for at once (default: what the
  cluster's CPUs and GPUs fit), so TPE learns from finished trials. Under HyperBand it is not
  applied: Ray counts PAUSED trials as live, and a cap smaller than a bracket would stop the
  bracket from ever filling; resources bound the trials that run at once instead.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna

from hpogrow.coordination import Coordinator
from hpogrow.errors import PipelineError, TrainingDiverged, UsageError
from hpogrow.progress import QUIET, Bar, Display
from hpogrow.record.run import BASE, RunRecord
from hpogrow.search.executors.base import Executor, Job, Run
from hpogrow.search.executors.halving_run import Segment, SegmentJob, run_halving, train_segment
from hpogrow.search.executors.ray_join import join_ray, probe_address, through_ray_client
from hpogrow.runs import BaseTrial, RunOutcome
from hpogrow.search.halving import Halving
from hpogrow.search.schedule import Schedule, round_to, rung_schedule
from hpogrow.search.space import SearchSpace
from hpogrow.train import Evaluation, Report

SCHEDULERS = ("sha", "asha", "hyperband", "none")


def check_ray_options(scheduler: str, reduction_factor: int, cpus_per_trial: float, gpus_per_trial: float,
                      max_concurrent: int | None) -> None:
    """Raise :class:`UsageError` (one line, named by its flag) for an option Ray cannot use."""
    if scheduler not in SCHEDULERS:
        raise UsageError(f"--scheduler {scheduler}: with --executor ray use {', '.join(SCHEDULERS)} (median is Optuna's "
                         "pruner: --executor local)")
    if not isinstance(reduction_factor, int) or reduction_factor < 2:
        raise UsageError(f"--reduction-factor {reduction_factor}: must be an integer of at least 2")
    if not cpus_per_trial > 0:
        raise UsageError(f"--cpus-per-trial {cpus_per_trial}: must be positive")
    if not gpus_per_trial >= 0:
        raise UsageError(f"--gpus-per-trial {gpus_per_trial}: must be 0 or more (0.5 shares a GPU between two trials)")
    if max_concurrent is not None and max_concurrent < 1:
        raise UsageError(f"--max-concurrent {max_concurrent}: need at least 1")


RETRIES = 2
"""Times a run whose Ray worker or node dies is tried again: a target run's task (it continues
from its partial checkpoint), a base trial (Tune restores it from its last rung checkpoint; the
Optuna trial is told FAIL only after the last try)."""


class _Feed:
    """The target runs' evaluations as they happen: Ray workers put ``(label, evaluation)`` on
    one queue, and the driver, while it waits for any of them, moves each run's progress bar and
    passes the evaluation to the run's report (which writes it to the study: a live curve)."""

    def __init__(self) -> None:
        self.queue = None  # a ray.util.queue.Queue, opened with the first target run
        self.bars: dict[str, Bar] = {}
        self.reports: dict[str, Report | None] = {}

    def open(self, label: str, bar: Bar, report: Report | None):
        """Register a run's bar and report; the queue its worker puts to."""
        if self.queue is None:
            import ray
            from ray.util.queue import Queue
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # beside the driver: a worker node that dies (unnoticed by Ray for a few seconds)
            # must not take the queue with it
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            self.queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        self.bars[label], self.reports[label] = bar, report
        return self.queue

    def show(self) -> None:
        import ray

        try:
            events = self.queue.get_nowait_batch(self.queue.qsize())
        except ray.exceptions.RayError:  # the queue's node died: the bars stop, the runs go on
            return
        for label, evaluation in events:
            if label in self.bars:
                self.bars[label].update(evaluation.tokens_seen, evaluation.val_loss)
            if self.reports.get(label) is not None:
                self.reports[label](evaluation)

    def close(self) -> None:
        if self.queue is not None:
            self.queue.shutdown()
        self.queue, self.bars, self.reports = None, {}, {}


@dataclass(frozen=True)
class RayExecutor(Executor):
    """Runs base trials as Ray Tune trials and target runs as Ray tasks (see the module docstring).

    Example (CPU, a local Ray runtime, about a minute)::

        from hpogrow import FourierTask, SearchConfig, run_pipeline
        from hpogrow.search.executors.ray import RayExecutor
        run_pipeline(FourierTask(modes=256), SearchConfig(base_width=32, trials=6, workdir="/tmp/hp"),
                     executor=RayExecutor(scheduler="asha", storage_path="/tmp/hp/ray"))
    """

    scheduler: Literal["sha", "asha", "hyperband", "none"] = "sha"
    """Synchronous successive halving (``halving``; its segments run as Ray tasks), Ray Tune's
    ASHA (asynchronous successive halving) or HyperBand, or none (every trial runs its full budget)."""
    halving: Halving = Halving()
    """The successive-halving design, for ``sha``."""
    reduction_factor: int = 2
    """Ratio between rungs of ASHA and HyperBand; ASHA keeps the best 1/rf of the trials at each rung."""
    max_rungs: int = 3
    """Rungs below the full budget for ASHA and HyperBand (fewer when the smallest would be under one step)."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves for each trial."""
    gpus_per_trial: float = 0.0
    """GPUs Ray reserves for each trial; fractions share a GPU (0.5: two trials per GPU)."""
    max_concurrent: int | None = None
    """Trials running at once; default: as many as the cluster's resources fit."""
    address: str | None = None
    """``None`` starts a local Ray runtime; ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` joins a
    running cluster, with Ray's token authentication when this machine has a token
    (:mod:`hpogrow.search.executors.ray_join`)."""
    num_cpus: int | None = None
    """CPUs of a local Ray runtime (default: all of this machine's)."""
    storage_path: str | None = None
    """Where Ray keeps results and rung checkpoints; default ``ray/`` beside the checkpoints."""
    checkpoints_to_keep: int = 1
    """Ray checkpoints kept per trial while the experiment runs."""
    reuse_actors: bool = True
    """Run consecutive trials in the same Ray worker (saves importing torch for every trial)."""
    verbose: bool = False
    """Show Ray's own console output (hidden by default)."""
    workers_per_run: int = 1
    """Data-parallel workers of each target run: 1 trains it as one Ray task; N > 1 as a Ray Train
    run of N DDP workers (gloo on CPU, NCCL on GPU), each with ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs."""
    _feed: _Feed = field(default_factory=_Feed, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_ray_options(self.scheduler, self.reduction_factor, self.cpus_per_trial, self.gpus_per_trial,
                          self.max_concurrent)
        if self.max_rungs < 0 or self.checkpoints_to_keep < 1:
            raise UsageError("max_rungs must be >= 0 and checkpoints_to_keep >= 1")
        if self.workers_per_run < 1:
            raise UsageError(f"--workers-per-run {self.workers_per_run}: need at least 1")
        if self.address is not None:  # an address where nothing answers fails here, before anything is written
            probe_address(self.address)

    @property
    def stopping(self) -> str:
        if self.scheduler == "sha":
            return self.halving.stopping
        return f"{self.scheduler}, reduction factor {self.reduction_factor}"

    def schedule(self, budget: float, step_tokens: int) -> Schedule:
        if self.scheduler == "sha":
            return self.halving.schedule(budget, step_tokens)
        return rung_schedule(budget, step_tokens, self.scheduler, self.reduction_factor, self.max_rungs)

    def design(self, schedule: Schedule) -> dict[str, Any]:
        if self.scheduler == "sha":
            return self.halving.describe(schedule)
        return {"name": self.scheduler, "reduction_factor": self.reduction_factor, "rungs": list(schedule.rungs)}

    def spend(self, trials: int, schedule: Schedule) -> float:
        return self.halving.spend(trials, schedule) if self.scheduler == "sha" else 1.0

    def plan_rows(self, schedule: Schedule, base_params: int) -> list[tuple[str, str]]:
        if self.scheduler == "sha":
            return [("rungs", f"on Ray (each segment a Ray task), {self.halving.explain(schedule, base_params)}; "
                              "the same tokens for every batch size")]
        per_param = " → ".join(f"{r / base_params:.3g}" for r in schedule.rungs)
        return [("rungs", f"Ray Tune, {self.scheduler}, reduction factor {self.reduction_factor}: "
                          f"{' → '.join(f'{r:,}' for r in schedule.rungs)} tokens ({per_param} tokens/parameter), "
                          "the same for every batch size")]

    def run(self, study: optuna.Study, space: SearchSpace, trials: int, base_trial: BaseTrial,
            display: Display = QUIET, coordinator: Coordinator | None = None) -> None:
        from hpogrow import record

        missing = trials - sum(record.counts_towards_total(t, coordinator) for t in study.get_trials(deepcopy=False))
        if missing < 1:
            return
        import ray
        from ray import tune

        from hpogrow.search.executors.ray_bridge import OptunaBridge, TrialStatusCallback
        from hpogrow.search.executors.ray_trainable import TrialSetup, run_ray_trial
        from hpogrow.search.executors.ray_view import TrialBoard
        from hpogrow.search.report import trial_line

        started_ray = self._connect(ray)
        try:
            if through_ray_client():
                _search_on_cluster(self, study, space, trials, base_trial, display)
                return
            if self.scheduler == "sha":
                self._run_halving(ray, study, space, trials, base_trial, display, coordinator)
                return
            template = base_trial.template
            rungs = self.base_schedule(base_trial, space).rungs
            board = TrialBoard(list(rungs), f"{study.study_name} on Ray Tune ({self.scheduler})")
            overall = display.bar("base search", trials)

            def changed(number: int, state: str | None, tokens: int | None, loss: float | None) -> None:
                board.update(number, state=state, tokens=tokens, loss=loss)
                if state in ("COMPLETE", "PRUNED", "FAIL"):
                    display.print(trial_line(study.trials[number]))
                    overall.advance(1, _best_value(study))

            if self.gpus_per_trial == 0 and ray.cluster_resources().get("GPU", 0) > 0 and template.device != "cpu":
                display.print("[yellow]warning: the Ray cluster has GPUs but --gpus-per-trial is 0, so Ray hides "
                                       "them and trials train on CPU; pass --gpus-per-trial 1 (or 0.5 to share)[/yellow]")
            bridge = OptunaBridge(study, space, trials, coordinator=coordinator, on_change=changed,
                                  identity=RunRecord(role=BASE, width=base_trial.base_width))
            setup = TrialSetup(base_trial, rungs)
            resources = {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}
            trainable = tune.with_resources(tune.with_parameters(run_ray_trial, setup=setup), resources)
            storage = Path(self.storage_path or Path(base_trial.checkpoint_dir).parent / "ray").resolve()
            name = f"{study.study_name.replace('/', '-')}-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    metric="val_loss", mode="min", search_alg=bridge, scheduler=self._scheduler(len(rungs) - 1),
                    num_samples=missing, max_concurrent_trials=self._concurrency(ray),
                    reuse_actors=self.reuse_actors),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(storage), verbose=2 if self.verbose else 0,
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=self.checkpoints_to_keep),
                    failure_config=tune.FailureConfig(max_failures=RETRIES),
                    callbacks=[TrialStatusCallback(bridge, board)]))
            try:
                with display.showing(board):
                    results = tuner.fit()
            except BaseException as error:
                bridge.fail_leftovers(f"search interrupted ({type(error).__name__})", abandoned=True)
                raise
            leftovers = bridge.fail_leftovers("the Ray experiment ended before the trial did")
            if leftovers:
                display.print(f"[yellow]trials {leftovers} never finished in Ray; marked FAIL[/yellow]")
            for error in results.errors[:3]:
                display.print(f"[red]a Ray trial failed: {str(error).strip().splitlines()[-1][:300]}[/red]")
            overall.close()
            _drop_ray_checkpoints(storage / name)
        finally:
            if started_ray:
                ray.shutdown()

    def _run_halving(self, ray, study: optuna.Study, space: SearchSpace, trials: int, base_trial: BaseTrial,
                     display: Display, coordinator: Coordinator | None) -> None:
        """Successive halving with each wave's segments as concurrent Ray tasks (each holding a
        trial's resources; a task whose worker or node dies is retried from its rung checkpoint)."""
        from hpogrow.search.report import trial_line

        overall = display.bar("base search", trials)
        remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                            max_retries=RETRIES)(_train_segment_remote)

        def train_wave(jobs: list[SegmentJob], shown: Display) -> list[Segment]:
            references = [remote.remote(job) for job in jobs]
            bar = shown.bar(f"{len(jobs)} trials to {jobs[0].tokens:,} tokens on Ray", len(jobs))
            pending = list(references)
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                    bar.advance(len(done))
                return ray.get(references)
            except ray.exceptions.RayTaskError as error:
                raise PipelineError(f"a base trial failed in Ray: {str(error).strip().splitlines()[-1][:300]}") from None
            except BaseException:
                for reference in pending:
                    ray.cancel(reference, force=True)
                raise
            finally:
                bar.close()

        def ended(number: int) -> None:
            display.print(trial_line(study.trials[number]))
            overall.advance(1, _best_value(study))

        run_halving(study, space, trials, base_trial, self.halving, self.base_schedule(base_trial, space), train_wave,
                    display, coordinator, ended)
        overall.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """One Ray runtime for the base search and the target runs (stopped after, if started here)."""
        import ray

        started = self._connect(ray)
        try:
            yield
        finally:
            self._feed.close()
            if started:
                ray.shutdown()

    def submit(self, run: Run, label: str, tokens: int, display: Display = QUIET,
               report: Report | None = None) -> Job:
        """Start ``run`` now as a Ray task with this executor's per-trial resources; its
        evaluations reach ``report`` here while it trains."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._connect(ray)
        bar = display.bar(f"{label} on Ray" + (f" ({self.workers_per_run} workers)" if self.workers_per_run > 1 else ""),
                          tokens)
        queue = self._feed.open(label, bar, report)
        if self.workers_per_run > 1:
            # the Ray Train driver holds no resources (its workers do) and is not retried (Ray Train
            # restarts a worker group that loses a worker); it runs beside this driver, because Ray
            # Train's controller runs where fit() is called and a worker node that dies must not
            # take it along
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            fit = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=here)(_fit_remote)
            storage = Path(self.storage_path or Path(tempfile.gettempdir()) / "hpogrow-ray").resolve()
            name = f"target-{''.join(c if c.isalnum() else '-' for c in label)}-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
            ref = fit.remote(run, queue, label, self.workers_per_run, self.gpus_per_trial > 0, self.cpus_per_trial,
                             self.gpus_per_trial, str(storage / "train"), name)
        else:
            # retried (on another node) only when its node or worker process dies; a run given a
            # partial checkpoint (hpogrow.resume) continues from it
            remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                max_retries=RETRIES)(_run_remote)
            ref = remote.remote(run, queue, label)
        return _RayJob(ref, label, display, bar, self._feed, report)

    # -- helpers -----------------------------------------------------------------------------

    def _connect(self, ray) -> bool:
        """Start or join Ray unless this process already is connected; True if we started it."""
        if not self.verbose:
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter is silent at verbose=0
            logging.getLogger("ray").setLevel(logging.ERROR)
        os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C aborts, as with --executor local
        if ray.is_initialized():
            return False
        join_ray(self.address, self.num_cpus, self.verbose)
        return True

    def _concurrency(self, ray) -> int | None:
        if self.scheduler == "hyperband":
            return None
        if self.max_concurrent is not None:
            return self.max_concurrent
        available = ray.cluster_resources()
        fits = available.get("CPU", 1) / self.cpus_per_trial
        if self.gpus_per_trial > 0:
            fits = min(fits, available.get("GPU", 0) / self.gpus_per_trial)
        return max(1, math.floor(fits + 1e-9))

    def _scheduler(self, rungs: int):
        from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, HyperBandScheduler

        scale = self.reduction_factor ** rungs
        if self.scheduler == "none" or rungs == 0:
            return FIFOScheduler()
        if self.scheduler == "hyperband":
            return HyperBandScheduler(time_attr="fidelity", max_t=scale, reduction_factor=self.reduction_factor)
        # grace a hair below 1 unit: ASHA counts its rungs with a floating-point log (rf**K / grace)
        return AsyncHyperBandScheduler(time_attr="fidelity", max_t=scale, grace_period=1 - 1e-9,
                                       reduction_factor=self.reduction_factor)


def _search_on_cluster(executor: RayExecutor, study: optuna.Study, space: SearchSpace, trials: int,
                       base_trial: BaseTrial, display: Display = QUIET) -> None:
    """The base search through Ray Client (``ray://``), as one Ray task on the head node.

    Ray Tune runs its driver loop next to the cluster in client mode, away from this process, and
    the Optuna bridge cannot follow it there; so the whole search (Tune and the bridge) runs as a
    task on the node Ray Client serves from, and writes the study itself. The study's storage
    must therefore be reachable from that node under the same URL (PostgreSQL, or a file on
    shared storage), as must the checkpoint and Ray storage folders. This process prints each
    trial as it finishes, read from the study.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from hpogrow.search.report import trial_line

    serving_node = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    search = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=serving_node)(_search_here)
    reference = search.remote(executor, study, space, trials, base_trial)
    shown = {t.number for t in study.get_trials(deepcopy=False, states=_FINISHED)}
    overall = display.bar("base search (on the cluster)", trials)
    try:
        while True:
            done = ray.wait([reference], timeout=1.0)[0]
            for trial in study.get_trials(deepcopy=False, states=_FINISHED):
                if trial.number not in shown:
                    display.print(trial_line(trial))
                    overall.advance(1, _best_value(study))
                shown.add(trial.number)
            if done:
                break
        ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        raise PipelineError(f"the base search failed on the cluster: {str(error).strip().splitlines()[-1][:300]}") from None
    except BaseException:
        ray.cancel(reference, force=True)
        raise
    finally:
        overall.close()


def _search_here(executor: RayExecutor, study: optuna.Study, space: SearchSpace, trials: int,
                 base_trial: BaseTrial) -> None:
    # no claim lock there: the locks of this machine's drivers do not travel (one driver per ray:// search)
    executor.run(study, space, trials, base_trial, QUIET, None)


_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


@dataclass(frozen=True)
class _ToQueue:
    """Puts a target run's evaluations on the driver's queue as they happen (for its record and
    progress bars)."""

    queue: Any
    label: str

    def __call__(self, evaluation: Evaluation) -> None:
        import ray

        try:
            self.queue.put_nowait((self.label, evaluation))
        except ray.exceptions.RayError:  # the queue's node died: the driver records the curve at the end
            pass


def _train_segment_remote(job: SegmentJob) -> Segment:
    """A successive-halving segment in a Ray worker (the task loaded once per worker)."""
    from dataclasses import replace

    from hpogrow.search.executors.ray_trainable import task_loaded_once

    import ray

    base_trial = replace(job.base_trial, task=task_loaded_once(job.base_trial.task))
    segment = train_segment(replace(job, base_trial=base_trial))
    if segment.summary is not None:
        context = ray.get_runtime_context()
        segment.summary.extra.update(node=context.get_node_id(), node_ip=ray.util.get_node_ip_address(),
                                     ray_task_id=context.get_task_id())
    return segment


def _run_remote(run: Run, queue, label: str) -> RunOutcome | TrainingDiverged:
    """A target run in a Ray worker; a divergence comes back as a value, to be raised in the driver."""
    try:
        return run(_ToQueue(queue, label), None)
    except TrainingDiverged as error:
        return error


def _fit_remote(run: Run, queue, label: str, workers: int, use_gpu: bool, cpus: float, gpus: float, storage: str,
                name: str) -> RunOutcome | TrainingDiverged:
    """A target run on ``workers`` DDP workers, driven from a Ray task (so that the driver's runs
    train concurrently); a divergence comes back as a value."""
    from hpogrow.search.executors.ray_train import fit_data_parallel

    try:
        return fit_data_parallel(run, workers, use_gpu=use_gpu, cpus_per_worker=cpus, gpus_per_worker=gpus,
                                 storage_path=storage, name=name, max_failures=RETRIES,
                                 on_evaluation=_ToQueue(queue, label))
    except TrainingDiverged as error:
        return error


@dataclass
class _RayJob:
    ref: object
    label: str
    display: Display
    bar: Bar
    feed: _Feed
    report: Report | None

    def result(self) -> RunOutcome:
        import ray

        try:
            while not ray.wait([self.ref], timeout=0.5)[0]:
                self.feed.show()
            outcome = ray.get(self.ref)
            self.feed.show()
        except ray.exceptions.RayTaskError as error:
            raise PipelineError(f"a target run failed in Ray: {str(error).strip().splitlines()[-1][:300]}") from None
        finally:
            self.bar.close()
        if isinstance(outcome, TrainingDiverged):
            raise outcome
        outcome.extra["ray_task_id"] = self.ref.task_id().hex()
        if self.report is not None:  # whatever the feed lost (the record keeps each point once)
            for evaluation in outcome.evaluations:
                self.report(evaluation)
        self.display.print(f"{self.label} (Ray): {outcome.state.tokens_seen:,} tokens, final loss "
                           f"{outcome.final_loss:.4f}, {outcome.tokens_per_second:,.0f} tokens/s")
        return outcome


def _drop_ray_checkpoints(experiment: Path) -> None:
    """Retention at the end: rung checkpoints only served paused trials, and none is left."""
    for folder in experiment.glob("*/checkpoint_*"):
        shutil.rmtree(folder, ignore_errors=True)


def _best_value(study: optuna.Study) -> float:
    values = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    return min(values) if values else float("nan")
