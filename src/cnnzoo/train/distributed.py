"""torchrun / DistributedDataParallel support.

`cnnzoo train` reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...):
without it the run is a single process; with it, every process joins the group (NCCL on CUDA,
gloo on the CPU), wraps the model in DDP (optionally converting BatchNorm to SyncBatchNorm),
and reads its own shard of each global batch. Only rank 0 prints, writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from .. import devices
from ..devices import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join torchrun's group if launched by it; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)  # raises on an unknown device or a GPU that is not there
    if devices.is_cuda(dev) and dev.index is None:  # each torchrun process its own GPU
        dev = torch.device("cuda", local)
    if devices.is_cuda(dev):
        torch.cuda.set_device(dev)
    info = DistInfo(rank, world, local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if devices.is_cuda(dev) else "gloo",
                                **({"device_id": dev} if devices.is_cuda(dev) else {}))
    return info, dev


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """`model` in DDP (its BatchNorms made SyncBatchNorm with `sync_bn`); unchanged in one process."""
    if not info.enabled:
        return model
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if devices.is_cuda(device) else None)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is True on any (e.g. a NaN loss seen by one rank)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class StopVote:
    """"Stop now?", the same answer on every rank: the stop signal asked (0: none). One process:
    its own. Under torchrun a SIGTERM reaches the ranks at different moments, yet they must
    stop (and save) at the same step: each call starts a MAX all-reduce of this rank's signal
    on a CPU (gloo) group and answers with the one the call before started. No device sync and
    no wait on the network per step; every rank stops one step after the first one to see it.
    Every rank must call it the same number of times."""

    def __init__(self, info: DistInfo, asked: Callable[[], int]) -> None:
        self.info, self.asked = info, asked
        self.pending: tuple[Any, torch.Tensor] | None = None
        self.group = None
        if info.enabled and dist.get_backend() != "gloo":  # NCCL: a CPU group beside it
            self.group = dist.new_group(backend="gloo")

    def __call__(self) -> int:
        if not self.info.enabled:
            return self.asked()
        agreed = self.close()
        if not agreed:
            t = torch.tensor([self.asked()], dtype=torch.int64)
            self.pending = (dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group, async_op=True), t)
        return agreed

    def close(self) -> int:
        """Wait for the vote in flight (before leaving the loop); its answer."""
        if self.pending is None:
            return 0
        work, t = self.pending
        self.pending = None
        work.wait()
        return int(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        # Leave together: a rank that tears gloo down while rank 0 still writes its checkpoint
        # and talks to it could abort ("terminate called without an active exception"). Free the
        # DDP reducer (held in reference cycles) first, while the interpreter is fully alive:
        # gloo work it still holds must not be destroyed during interpreter finalisation.
        import gc

        gc.collect()
        try:
            dist.barrier()
        except Exception:
            pass  # a peer already failed; its error is the one to report
        dist.destroy_process_group()
