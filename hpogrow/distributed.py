"""The data-parallel context of this process: which rank of how many, and the few collectives
the training loop needs to run the same run on every rank.

A run is data-parallel when a ``torch.distributed`` process group of more than one process is
up (Ray Train's ``TorchTrainer`` starts one per worker group, rank = Ray Train's world rank;
``torch.multiprocessing`` tests start one themselves). The process group is the one source of
truth because it is what DDP and the all-reduces below use; nothing here imports Ray.

**Exact sharding.** Every rank draws the *global* batch and keeps rows ``rank::world``
(:func:`shard`). Each rank's loss is then the mean over an equal share, DDP averages the
gradients, and the averaged gradient is the one-process gradient up to float rounding: a
two-worker curve can be tested against a one-process curve.

**Lockstep.** Every decision that ends or branches the loop must be the same on every rank, or
one rank waits forever in a collective the others never reach: the running training loss is
all-reduced before it is checked (:func:`global_mean`), and a report callback's request to stop
is rank 0's, broadcast (:func:`chief_decides`). With one process every helper returns its input
unchanged, so a single-process run is bit-identical to one without this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import _pytree

from hpogrow.errors import UsageError
from hpogrow.tasks.base import Batch


@dataclass(frozen=True)
class Parallel:
    """Where this process stands in a data-parallel run."""

    rank: int
    """This process's rank, 0 … ``world - 1``."""
    world: int
    """Processes training the run together (1: not data-parallel)."""

    @property
    def chief(self) -> bool:
        """Rank 0: the one that writes checkpoints and speaks for the run."""
        return self.rank == 0


ALONE = Parallel(rank=0, world=1)


def current() -> Parallel:
    """This process's rank and world size in its process group; :data:`ALONE` outside one."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return ALONE
    world = torch.distributed.get_world_size()
    return ALONE if world == 1 else Parallel(torch.distributed.get_rank(), world)


def check_batch_size(batch_size: int, parallel: Parallel) -> int:
    """Examples per rank of a global batch of ``batch_size``.

    Raises:
        UsageError: ``batch_size`` does not split into equal shares (unequal shares would weigh
            examples unequally in DDP's averaged gradient).
    """
    if batch_size % parallel.world:
        raise UsageError(f"batch size {batch_size} does not split evenly over {parallel.world} data-parallel "
                         f"workers; use a batch size that is a multiple of {parallel.world}, or another worker count")
    return batch_size // parallel.world


def shard(batch: Batch, parallel: Parallel) -> Batch:
    """This rank's rows ``rank::world`` of every tensor in ``batch`` (tuples, lists and dicts of
    tensors whose leading dimension is the batch, e.g. ``(x, y)``: ``(B, …) -> (B / world, …)``).

    Raises:
        UsageError: a leading dimension is not a multiple of the world size.
    """
    if parallel.world == 1:
        return batch

    def rows(tensor: torch.Tensor) -> torch.Tensor:
        check_batch_size(len(tensor), parallel)
        return tensor[parallel.rank::parallel.world]

    return _pytree.tree_map_only(torch.Tensor, rows, batch)


def local_device(device: torch.device, parallel: Parallel) -> torch.device:
    """The device this rank trains on: with several ranks and CUDA, this process's current GPU
    (Ray Train sets it to the worker's own; ``cuda:0`` would put every rank of a node on one GPU)."""
    if parallel.world == 1 or device.type != "cuda":
        return device
    return torch.device("cuda", torch.cuda.current_device())


def data_parallel(model: nn.Module, device: torch.device, parallel: Parallel) -> nn.Module:
    """``model`` (base shapes set, on ``device`` from :func:`local_device`) wrapped in DDP for a
    data-parallel run; the model itself with one process.

    DDP shares the model's parameters, so an optimizer built over ``model.parameters()`` (mup's,
    which reads each parameter's ``infshape``) steps the wrapped module too; at construction DDP
    broadcasts rank 0's parameters, so every rank starts from the same weights.
    """
    if parallel.world == 1:
        return model
    if device.type == "cuda":
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return nn.parallel.DistributedDataParallel(model)


def global_mean(total: torch.Tensor, parallel: Parallel) -> torch.Tensor:
    """The mean over ranks of a scalar (e.g. each rank's summed training loss): the same value on
    every rank, so every rank takes the same branch on it."""
    if parallel.world == 1:
        return total
    reduced = total.detach().clone()
    torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.SUM)
    return reduced / parallel.world


def chief_decides(decision: bool, device: torch.device, parallel: Parallel) -> bool:
    """Rank 0's ``decision`` on every rank (e.g. a report callback asking to stop), so that all
    ranks stop at the same step."""
    if parallel.world == 1:
        return decision
    flag = torch.tensor(int(decision), device=device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def agree(value: int, what: str, device: torch.device, parallel: Parallel) -> None:
    """Check that every rank holds the same ``value`` (e.g. the step a run resumed at).

    Raises:
        RuntimeError: the ranks differ (Ray Train then restarts the worker group).
    """
    if parallel.world == 1:
        return
    low = torch.tensor(value, device=device)
    high = low.clone()
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    if low.item() != high.item():
        raise RuntimeError(f"data-parallel ranks disagree: {what} {low.item()} on one rank, {high.item()} on another")
