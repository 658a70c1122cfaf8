"""One target run on two DDP workers with Ray Train V2 (:mod:`hpogrow.search.executors.ray_train`):
real Ray, real gloo, real mup. On a local runtime: the curve of one process, evaluations live on
rank 0, a divergence raised in the caller and not retried, a worker that dies replaced and the run
continued from its partial checkpoint, a finished run's outcome kept under its name, the Ray
executor's ``workers_per_run``; and on a two-node cluster started with ``ray start``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pytest
import ray
import ray.cloudpickle
from ray.util.queue import Queue

from hpogrow import distributed
from hpogrow.errors import TrainingDiverged
from hpogrow.resume import ResumePoint
from hpogrow.runs import CheckpointOwner, run_scratch
from hpogrow.search.executors.base import Run
from hpogrow.search.executors.ray_train import fit_data_parallel
from hpogrow.tasks import FourierTask
from hpogrow.train import Evaluation, Report
from tests.ray_nodes import RAY, RayCluster
from tests.test_distributed import BASE_WIDTH, CONFIG, WIDTH

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
TASK = FourierTask(modes=64, eval_examples=256)
# Ray workers cannot import this test folder: ship what they call from it by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _fit(run: Run, storage: Path, name: str, queue: Queue, max_failures: int = 0):
    return fit_data_parallel(run, 2, use_gpu=False, cpus_per_worker=1, gpus_per_worker=0, storage_path=str(storage),
                             name=name, max_failures=max_failures, on_evaluation=queue.put)


def _drain(queue: Queue) -> list[Evaluation]:
    return queue.get_nowait_batch(queue.qsize())


_CLUSTER_DRIVER = textwrap.dedent("""
    import functools, sys
    import ray
    from hpogrow.runs import run_scratch
    from hpogrow.search.executors.ray_join import join_ray
    from hpogrow.search.executors.ray_train import fit_data_parallel
    from hpogrow.tasks import FourierTask
    from hpogrow.train import TrainConfig

    join_ray(sys.argv[1])
    config = TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 16, evaluations=4, device="cpu")
    run = functools.partial(run_scratch, FourierTask(modes=64, eval_examples=256), 32, 16, config, 0, None)
    outcome = fit_data_parallel(run, 2, use_gpu=False, cpus_per_worker=1, gpus_per_worker=0,
                                storage_path=sys.argv[2], name="scratch-w32", max_failures=0,
                                on_evaluation=lambda evaluation: None)
    nodes = sum(node["Alive"] for node in ray.nodes())
    print("OUTCOME", nodes, outcome.extra["workers"], ",".join(str(e.step) for e in outcome.evaluations),
          outcome.final_loss)
""")


def test_a_two_worker_run_on_a_two_node_cluster(tmp_path):
    """Head and worker node with one CPU each (``ray start``), the driver joined by address: the
    two workers cannot share a node, so DDP's gloo all-reduce crosses nodes."""
    root = Path(tempfile.mkdtemp(prefix="hpd", dir="/tmp"))
    cluster = RayCluster(home=root / "home")
    cluster.home.mkdir()
    subprocess.run([RAY, "get-auth-token", "--generate"], env=cluster.ray_env(), capture_output=True, check=True)
    try:
        cluster.start_node(cpus=1, head=True)
        cluster.start_node(cpus=1)
        driver = subprocess.run([sys.executable, "-c", _CLUSTER_DRIVER, cluster.address, str(tmp_path / "ray")],
                                env=cluster.ray_env(), cwd=ROOT, capture_output=True, text=True, timeout=400)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)])
    assert driver.returncode == 0, driver.stderr[-3000:]
    line = next(line for line in driver.stdout.splitlines() if line.startswith("OUTCOME"))
    single = run_scratch(TASK, WIDTH, BASE_WIDTH, CONFIG, 0, None)
    nodes, workers, steps, final = line.split()[1:]
    assert (nodes, workers, steps) == ("2", "2", "0,4,8,12,16")
    assert abs(float(final) - single.final_loss) <= 1e-5 * single.final_loss


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    """More logical CPUs than this machine's two cores: two workers and the driver's queue."""
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def test_two_workers_train_the_curve_of_one_process_and_report_it_live(ray_runtime, tmp_path):
    queue = Queue()
    run = partial(run_scratch, TASK, WIDTH, BASE_WIDTH, CONFIG, 0, tmp_path / "checkpoint")
    outcome = _fit(run, tmp_path / "ray", "scratch-w32", queue)
    single = run_scratch(TASK, WIDTH, BASE_WIDTH, CONFIG, 0, None)

    assert outcome.extra["workers"] == 2
    assert [e.step for e in outcome.evaluations] == [0, 4, 8, 12, 16]
    assert _drain(queue) == outcome.evaluations  # once each, in order, from rank 0 only
    for parallel, alone in zip(outcome.evaluations, single.evaluations, strict=True):
        assert abs(parallel.val_loss - alone.val_loss) <= 1e-5 * alone.val_loss
    assert outcome.checkpoint == tmp_path / "checkpoint" and (outcome.checkpoint / "model.pt").is_file()

    # the finished run's outcome stays under its name: a new fit returns it without training again
    again = _fit(run, tmp_path / "ray", "scratch-w32", queue)
    assert again.evaluations == outcome.evaluations and queue.qsize() == 0


def test_a_divergence_is_raised_in_the_caller_and_not_retried(ray_runtime, tmp_path):
    queue = Queue()
    run = partial(run_scratch, TASK, WIDTH, BASE_WIDTH, replace(CONFIG, learning_rate=1e30), 0, None)
    with pytest.raises(TrainingDiverged, match="too high"):
        _fit(run, tmp_path / "ray", "diverges", queue, max_failures=2)
    assert [e.step for e in _drain(queue)] == [0]  # one attempt: the evaluation before the first step, once


@dataclass(frozen=True)
class _DiesOnce:
    """A run whose rank 1 process is SIGKILLed at its evaluation of step ``step``, the first time only."""

    run: Run
    marker: Path
    step: int = 8

    def __call__(self, report: Report | None, on_tokens) -> object:
        def report_or_die(evaluation: Evaluation) -> bool | None:
            if evaluation.step == self.step and distributed.current().rank == 1 and not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return report(evaluation)

        return self.run(report_or_die, on_tokens)


def test_a_worker_that_dies_is_replaced_and_the_run_continues_from_its_partial_checkpoint(ray_runtime, tmp_path):
    """Rank 1 killed at step 8 of 16: Ray Train restarts the group, both ranks continue from the
    partial checkpoint rank 0 wrote at step 4 or 8, and the run ends with the curve and final loss
    of an uninterrupted one-process run; rank 0 reported every evaluation (the resumed ones again)."""
    queue = Queue()
    owner = CheckpointOwner("k", "s/target", 0)
    scratch = partial(run_scratch, TASK, WIDTH, BASE_WIDTH, CONFIG, 0, None, owner=owner,
                      resume=ResumePoint(tmp_path / "resume"))
    outcome = _fit(_DiesOnce(scratch, tmp_path / "died"), tmp_path / "ray", "dies-once", queue, max_failures=1)
    single = run_scratch(TASK, WIDTH, BASE_WIDTH, CONFIG, 0, None)
    assert (tmp_path / "died").exists() and outcome.extra["workers"] == 2
    tokens = {e.step: e.tokens_seen for e in single.evaluations}
    assert outcome.extra["resumed_at_tokens"] in ((tokens[4],), (tokens[8],))  # at most one interval lost
    assert [e.step for e in outcome.evaluations] == [0, 4, 8, 12, 16]
    for parallel, alone in zip(outcome.evaluations, single.evaluations, strict=True):
        assert abs(parallel.val_loss - alone.val_loss) <= 1e-5 * alone.val_loss
    assert {e.step for e in _drain(queue)} == {0, 4, 8, 12, 16}  # none lost (a resumed one twice: the record keeps one)


def test_the_ray_executor_trains_a_target_run_on_two_workers_and_reports_it_live(ray_runtime, tmp_path):
    from hpogrow.search.executors.ray import RayExecutor

    received: list[Evaluation] = []
    executor = RayExecutor(workers_per_run=2, storage_path=str(tmp_path / "ray"))
    with executor.session():
        job = executor.submit(partial(run_scratch, TASK, WIDTH, BASE_WIDTH, CONFIG, 0, None), "scratch w32",
                              CONFIG.tokens, report=received.append)
        outcome = job.result()
    assert outcome.extra["workers"] == 2
    assert {e.step for e in received} == {e.step for e in outcome.evaluations} == {0, 4, 8, 12, 16}
