"""Folder runs across processes: ``torchrun --nproc_per_node N -m lbam inpaint PHOTOS MASKS -o OUT``.

Each process (rank r of N) takes every N-th photo of the planned list, starting with the r-th, so
no two processes write the same file and together they write exactly what one process would.
The processes then send their summaries to rank 0 (gloo, small Python objects between the
processes of one run), which prints one summary with every failure. Without torchrun's
environment nothing here does anything.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch.distributed as dist

from lbam.errors import LbamError
from lbam.inference.batch import FolderSummary


@dataclass(frozen=True)
class Shard:
    """This process's share of a folder run: every ``count``-th photo, starting at ``index``."""

    index: int = 0
    count: int = 1


def from_environment() -> Shard:
    """The shard torchrun's ``RANK`` / ``WORLD_SIZE`` describe; joins the process group when N > 1."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise LbamError("bad torchrun environment: RANK and WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise LbamError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=60))
    return Shard(rank, world)


def merge(summary: FolderSummary, shard: Shard) -> FolderSummary:
    """On rank 0 the summary of the whole run (results and failures of every process, in photo
    order); on the others their own. A collective: every process must call it."""
    if shard.count == 1:
        return summary
    gathered: list = [None] * shard.count
    dist.all_gather_object(gathered, summary)
    dist.destroy_process_group()
    if shard.index != 0:
        return summary
    return FolderSummary(
        results=sorted((r for s in gathered for r in s.results), key=lambda r: str(r.image)),
        failures=sorted((f for s in gathered for f in s.failures), key=lambda f: str(f[0])),
        unused_masks=summary.unused_masks,
        seconds=max(s.seconds for s in gathered),
        skipped=sorted(p for s in gathered for p in s.skipped),
    )
