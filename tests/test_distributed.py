"""Data-parallel training (:mod:`hpogrow.distributed`): exact sharding, and two processes on gloo
(started by ``torch.multiprocessing``, as Ray Train's workers would be) training the curve of
one process, with real mup models and a real DDP."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hpogrow import distributed
from hpogrow.checkpoint import load_model, read_checkpoint
from hpogrow.distributed import ALONE, Parallel
from hpogrow.errors import UsageError
from hpogrow.runs import RunOutcome, run_scratch
from hpogrow.tasks import FourierTask
from hpogrow.train import TrainConfig

WIDTH, BASE_WIDTH = 32, 16
CONFIG = TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 16, evaluations=4, device="cpu")


def test_shard_keeps_rows_rank_modulo_world_of_every_tensor():
    x, y = torch.arange(12.0).reshape(6, 2), torch.arange(6)  # (6, 2), (6,)
    shards = [distributed.shard({"pair": (x, y), "list": [y]}, Parallel(rank, 3)) for rank in range(3)]
    for rank, part in enumerate(shards):
        assert torch.equal(part["pair"][0], x[rank::3]) and torch.equal(part["pair"][1], y[rank::3])
        assert torch.equal(part["list"][0], y[rank::3])
    assert sorted(torch.cat([part["pair"][1] for part in shards]).tolist()) == list(range(6))  # each row once
    assert distributed.shard((x, y), ALONE) == (x, y)  # one process: the batch itself


def test_shard_refuses_a_batch_that_does_not_split_evenly():
    with pytest.raises(UsageError, match="batch size 6 does not split evenly over 4") as error:
        distributed.shard((torch.zeros(6, 2),), Parallel(1, 4))
    assert "\n" not in str(error.value)


def test_one_process_outside_a_process_group():
    assert distributed.current() == ALONE and ALONE.chief and not Parallel(1, 2).chief


class _RowCountingTask(FourierTask):
    """The Fourier task, remembering how many rows each training step's loss saw."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.rows: list[int] = []

    def loss(self, model, batch):
        self.rows.append(len(batch[0]))
        return super().loss(model, batch)


def _train_rank(rank: int, world: int, folder: Path, config: TrainConfig) -> None:
    """One rank of a data-parallel ``run_scratch`` (a ``torch.multiprocessing`` process)."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank,
                                         world_size=world)
    try:
        task = _RowCountingTask(modes=64, eval_examples=256)
        outcome = run_scratch(task, WIDTH, BASE_WIDTH, config, 0, folder / "checkpoint")
        (folder / f"rank-{rank}.pkl").write_bytes(pickle.dumps((outcome, task.rows)))
    finally:
        torch.distributed.destroy_process_group()


def _relative_difference(first: float, second: float) -> float:
    return abs(first - second) / abs(second)


@pytest.mark.slow
def test_two_processes_on_gloo_train_the_curve_of_one(tmp_path):
    """The exactness DDP with sharded batches promises: every evaluation of a two-rank run within
    1e-5 (relative, fp32) of the one-process run, the same on both ranks, each rank stepping on
    half of every batch, and final weights that match."""
    task = FourierTask(modes=64, eval_examples=256)
    alone = run_scratch(task, WIDTH, BASE_WIDTH, CONFIG, 0, tmp_path / "alone")

    torch.multiprocessing.spawn(_train_rank, args=(2, tmp_path, CONFIG), nprocs=2)
    ranks: list[tuple[RunOutcome, list[int]]] = [pickle.loads((tmp_path / f"rank-{r}.pkl").read_bytes())
                                                for r in range(2)]

    (chief, chief_rows), (other, other_rows) = ranks
    assert chief.evaluations == other.evaluations  # every rank saw the same curve
    assert chief_rows == other_rows == [CONFIG.batch_size // 2] * 16  # half of each of the 16 batches
    assert [e.step for e in chief.evaluations] == [e.step for e in alone.evaluations] == [0, 4, 8, 12, 16]
    for parallel, single in zip(chief.evaluations, alone.evaluations, strict=True):
        assert _relative_difference(parallel.val_loss, single.val_loss) <= 1e-5, (parallel, single)
        if single.train_loss is not None:
            assert _relative_difference(parallel.train_loss, single.train_loss) <= 1e-5, (parallel, single)
    # and the curve moved by far more than the tolerance: the comparison is not of untrained models
    assert _relative_difference(chief.evaluations[-1].val_loss, chief.evaluations[0].val_loss) > 1e-3

    assert chief.checkpoint == tmp_path / "checkpoint" and other.checkpoint is None  # rank 0 alone writes it
    trained, _ = load_model(read_checkpoint(chief.checkpoint), task)
    reference, _ = load_model(read_checkpoint(alone.checkpoint), task)
    torch.testing.assert_close(trained.state_dict(), reference.state_dict(), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_compiled_two_process_training_is_the_compiled_one_process_curve(tmp_path):
    """``compile=True`` with two ranks compiles the DDP-wrapped module (DDP's graph-break
    optimizer) and evaluates the plain model: still the one-process curve."""
    config = replace(CONFIG, compile=True)
    alone = run_scratch(FourierTask(modes=64, eval_examples=256), WIDTH, BASE_WIDTH, config, 0, None)
    torch.multiprocessing.spawn(_train_rank, args=(2, tmp_path, config), nprocs=2)
    chief, _ = pickle.loads((tmp_path / "rank-0.pkl").read_bytes())
    for parallel, single in zip(chief.evaluations, alone.evaluations, strict=True):
        assert _relative_difference(parallel.val_loss, single.val_loss) <= 1e-5, (parallel, single)


def _agree_rank(rank: int, world: int, folder: Path) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank,
                                         world_size=world)
    try:
        parallel = distributed.current()
        distributed.agree(7, "resumed at step", torch.device("cpu"), parallel)  # the same everywhere: fine
        try:
            distributed.agree(rank, "resumed at step", torch.device("cpu"), parallel)
            outcome = "agreed"
        except RuntimeError as error:
            outcome = str(error)
        (folder / f"rank-{rank}.txt").write_text(outcome)
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_that_would_resume_from_different_steps_stop_on_every_rank(tmp_path):
    """A rank that read another partial checkpoint than the others (or none) must not train out of
    lockstep: every rank raises, and Ray Train restarts the group."""
    torch.multiprocessing.spawn(_agree_rank, args=(2, tmp_path), nprocs=2)
    for rank in range(2):
        assert (tmp_path / f"rank-{rank}.txt").read_text() == \
            "data-parallel ranks disagree: resumed at step 0 on one rank, 1 on another"
