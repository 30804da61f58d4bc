"""Multi-process training through ``torchrun``: process group setup and small helpers.

``torchrun`` (or ``python -m torch.distributed.run``) starts one process per device and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; a plain
``lbam train`` has none of them and runs as a single process with the same code path
(``world_size == 1``, no process group). The backend is NCCL when training on CUDA and gloo on
the CPU; ``LBAM_DIST_BACKEND`` forces one.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from lbam.errors import LbamError
from lbam.utils.device import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is: global rank, number of processes, rank on this node, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: no process group (single process)
    owns_group: bool = False  # this context created the process group, so cleanup destroys it

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints; the others only train."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None


def init_distributed(device_name: str = "auto", timeout_minutes: float = 30.0) -> DistributedContext:
    """Join the process group described by torchrun's environment, or run alone.

    Raises:
        LbamError: torchrun variables that are inconsistent, or a device that does not exist.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise LbamError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world_size}")
    if world_size > 1 and device_name.startswith("cuda:"):
        raise LbamError(
            f"device {device_name!r} would put every process on one GPU; under torchrun use "
            "'cuda' or 'auto' (process LOCAL_RANK takes cuda:LOCAL_RANK)"
        )
    device = resolve_device(device_name, local_rank)
    if world_size == 1:
        return DistributedContext(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = os.environ.get("LBAM_DIST_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
    # A caller that runs several trainings (lbam ablate) joins once and keeps the group: joining
    # again after destroying it could wait forever on the second rendezvous.
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(
            backend=backend,
            timeout=datetime.timedelta(minutes=timeout_minutes),
            **({"device_id": device} if backend == "nccl" else {}),
        )
    return DistributedContext(rank, world_size, local_rank, device, backend, owns_group)


def cleanup(context: DistributedContext) -> None:
    if context.enabled and context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        if context.backend == "nccl":
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (in place; also returned)."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= context.world_size
    return tensor


def all_reduce_gradients(module: nn.Module, context: DistributedContext) -> None:
    """Average ``.grad`` of every parameter over all processes, as DistributedDataParallel does.

    Used for the critic, whose gradient penalty differentiates the critic twice
    (``autograd.grad(create_graph=True)``), which DistributedDataParallel does not support.
    """
    if not context.enabled:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    all_reduce_mean(flat, context)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_process(flag: bool, context: DistributedContext) -> bool:
    """True on every process when ``flag`` is true on at least one (a collective: all must call it)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def broadcast_state(module: nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if context.enabled:
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)


def broadcast_buffers(module: nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every process, as DDP does."""
    if context.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def broadcast_object(value: object, context: DistributedContext) -> object:
    """Rank 0's ``value`` on every process (for small picklable data created locally, never read from disk)."""
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=context.device if context.backend == "nccl" else None)
    return box[0]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise LbamError(f"bad torchrun environment: {name}={value!r} is not an integer") from None
