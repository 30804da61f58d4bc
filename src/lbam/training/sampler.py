"""The order in which training images are visited: a pure function of (seed, step, rank).

Each epoch is a permutation of the training indices drawn from a generator seeded with
``seed + epoch`` (what ``DistributedSampler.set_epoch`` does). Global batch ``k`` of an epoch is
``perm[k * B : (k + 1) * B]``; process ``rank`` of ``world_size`` takes every ``world_size``-th
index of it. So the union of what the processes see at a step is the same global batch for any
number of processes, and a resumed run starts at exactly the batch it would have seen next.
The last incomplete global batch of an epoch is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from lbam.errors import LbamError


def epoch_permutation(num_items: int, seed: int, epoch: int) -> list[int]:
    """A permutation of ``range(num_items)`` that depends only on ``seed`` and ``epoch``."""
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_items, generator=generator).tolist()


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields, for each training step from ``start_step`` on, this process's ``(epoch, index)`` pairs.

    Infinite: the training loop decides when to stop. ``indices`` are the dataset indices allowed
    for training (the held-out validation images are left out of it).
    """

    def __init__(
        self,
        indices: Sequence[int],
        global_batch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        if global_batch % world_size:
            raise LbamError(
                f"train.batch_size ({global_batch}) must be divisible by the number of processes ({world_size})"
            )
        if len(indices) < global_batch:
            raise LbamError(
                f"only {len(indices)} training images for a batch of {global_batch}: "
                "add images or lower train.batch_size"
            )
        self.indices = list(indices)
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step

    @property
    def batches_per_epoch(self) -> int:
        return len(self.indices) // self.global_batch

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of a step."""
        return divmod(step, self.batches_per_epoch)

    def global_batch_at(self, step: int) -> list[int]:
        """The dataset indices of the whole global batch of ``step`` (all processes together)."""
        epoch, k = self.position(step)
        order = epoch_permutation(len(self.indices), self.seed, epoch)
        chosen = order[k * self.global_batch : (k + 1) * self.global_batch]
        return [self.indices[i] for i in chosen]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        epoch, order = -1, []
        while True:
            batch_epoch, k = self.position(step)
            if batch_epoch != epoch:
                epoch = batch_epoch
                order = epoch_permutation(len(self.indices), self.seed, epoch)
            chosen = order[k * self.global_batch : (k + 1) * self.global_batch]
            yield [(epoch, self.indices[i]) for i in chosen[self.rank :: self.world_size]]
            step += 1


class EpochIndexedDataset(Dataset):
    """Takes ``(epoch, index)`` keys: sets the epoch of the wrapped dataset, then returns its item.

    The dataset's item randomness (crop, flip, mask) is a function of (seed, epoch, index), so
    passing the epoch with every key keeps DataLoader workers in step without any shared state.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        self.dataset.set_epoch(epoch)  # type: ignore[attr-defined]
        return self.dataset[index]
