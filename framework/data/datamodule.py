"""Token windows for language modelling, served as a LightningDataModule."""

from __future__ import annotations

import mmap

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from framework.errors import DataError


def check_split_length(split: str, num_tokens: int, block_size: int) -> None:
    """Raise DataError unless ``split`` holds at least one window of ``block_size + 1`` tokens."""
    if num_tokens < block_size + 1:
        raise DataError(
            f"The {split} split has {num_tokens} tokens, fewer than block_size + 1 = {block_size + 1} "
            "needed for one window. Use a larger corpus, a smaller data.block_size, or a different "
            "data.val_fraction."
        )


# Windows a process reads between two releases of a memmap's pages (see release_mapped_pages).
RELEASE_EVERY = 64


def release_mapped_pages(tokens: np.ndarray) -> None:
    """Unmap the pages of ``tokens``' file that this process has touched, if it is a read-only
    memmap (as the token cache opens them) or a :class:`~framework.data.prepared.ShardedTokens`
    of them; no-op for other arrays.

    On Linux a page fault on a memmap can map a whole page-cache folio (up to megabytes with
    readahead), so random windows over a large file would count most of it in the process's
    resident set. The pages stay in the kernel's page cache; the next read maps them again.
    """
    for array in getattr(tokens, "shards", [tokens]):  # a prepared dataset's ShardedTokens: each shard
        mapping = getattr(array, "_mmap", None)  # numpy's; views of a memmap share it
        if isinstance(array, np.memmap) and array.mode == "r" and mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's next output from the state in each element (Steele, Lea & Flood, 2014;
    Vigna's splitmix64.c): uint64 -> uint64, a bijection whose finaliser (Stafford's Mix13)
    flips each output bit with probability about 1/2 for any flipped input bit; here it hashes
    keyed counters rather than stepping the generator's state."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform_below(seed: int, counters: np.ndarray, bound: int) -> np.ndarray:
    """One integer in ``[0, bound)`` per counter, a function of ``(seed, counter)`` alone
    (counter-based, as Philox in Salmon et al., 2011), computed for a whole batch at once.

    SplitMix64(SplitMix64(seed) + counter), scaled by :func:`scale_below`. Returns int64, the
    shape of ``counters``.
    """
    key = splitmix64(np.array([seed], dtype=np.int64).view(np.uint64))[0]
    with np.errstate(over="ignore"):
        bits = splitmix64(key + np.asarray(counters, dtype=np.int64).view(np.uint64))
    return scale_below(bits, bound)


def scale_below(bits: np.ndarray, bound: int) -> np.ndarray:
    """uint64 random bits -> int64 in ``[0, bound)``: the top 53 bits times ``bound / 2**53``,
    rounded down (exact in float64; the bias is below ``bound / 2**53``)."""
    return ((bits >> np.uint64(11)).astype(np.float64) * (bound / 2.0**53)).astype(np.int64)


def already_batched(batch):
    """A DataLoader ``collate_fn`` for datasets whose ``__getitems__`` returns the batch itself."""
    return batch


class _Windows(Dataset):
    """Windows of ``block_size + 1`` tokens, read a batch at a time: the DataLoader calls
    ``__getitems__`` with a batch's indices, which gathers every window with one NumPy index.
    A loader over it needs :func:`already_batched` as its ``collate_fn``: the default one would
    stack the ``(x, y)`` pair into one tensor.

    Every ``RELEASE_EVERY`` windows read in a process (rank or DataLoader worker, each with its
    own count) release the memmap's pages.
    """

    def __init__(self, tokens: np.ndarray, block_size: int) -> None:
        self.tokens, self.block_size, self.reads = tokens, block_size, 0
        self.offsets = np.arange(block_size + 1)

    def starts(self, indices: np.ndarray) -> np.ndarray:
        """The first token of each window, int64 of the shape of ``indices``."""
        raise NotImplementedError

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: both ``(len(indices), block_size)`` int64, ``y`` being ``x`` shifted by one."""
        before, self.reads = self.reads, self.reads + len(indices)
        if self.reads // RELEASE_EVERY > before // RELEASE_EVERY:
            release_mapped_pages(self.tokens)
        starts = self.starts(np.asarray(indices, dtype=np.int64))
        windows = torch.from_numpy(self.tokens[starts[:, None] + self.offsets].astype(np.int64))
        return windows[:, :-1], windows[:, 1:]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: both ``(block_size,)`` int64."""
        x, y = self.__getitems__([index])
        return x[0], y[0]


class RandomWindows(_Windows):
    """``num_samples`` windows at seeded random offsets, sampled with replacement (as nanoGPT).

    Sample ``i``'s offset is :func:`uniform_below` of ``(seed, first_sample + i)``: it does not
    depend on the order samples are drawn in, so any worker, rank or resumed run reproduces it.
    A resumed run sets ``first_sample`` to the number of samples already trained on.

    Items: ``(x, y)``, both ``(block_size,)`` int64, ``y`` being ``x`` shifted left by one token.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, num_samples: int, seed: int) -> None:
        check_split_length("train", len(tokens), block_size)
        super().__init__(tokens, block_size)
        self.num_samples, self.seed = num_samples, seed
        self.num_offsets = len(tokens) - block_size
        self.first_sample = 0

    def __len__(self) -> int:
        return self.num_samples

    def starts(self, indices: np.ndarray) -> np.ndarray:
        return uniform_below(self.seed, self.first_sample + indices, self.num_offsets)


class SequentialWindows(_Windows):
    """Consecutive windows with stride ``block_size``: each token is a target exactly once.

    Items: ``(x, y)`` as in :class:`RandomWindows`; ``len = (num_tokens - 1) // block_size``.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, split: str = "val") -> None:
        check_split_length(split, len(tokens), block_size)
        super().__init__(tokens, block_size)

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def starts(self, indices: np.ndarray) -> np.ndarray:
        return indices * self.block_size


class UnpaddedDistributedSampler(DistributedSampler):
    """Every ``num_replicas``-th index from ``rank``, without the padding DistributedSampler adds.

    DistributedSampler repeats indices so every process gets the same count; for evaluation
    that would count some windows twice. Here each window is evaluated exactly once across
    processes (processes may get one batch more or less).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


class SampledDataModule(pl.LightningDataModule):
    """Loaders shared by the tasks' DataModules: ``train_set`` is a sequence of samples that
    depend only on the seed and their index (``first_sample`` moves it on after a resume),
    ``val_set``/``test_set`` are evaluated in order.

    Under several processes, process r trains on samples r, r + world, ... in order (not the
    shuffled DistributedSampler Lightning would insert), so a step of world x batch samples uses
    the same samples as one process with the whole batch; evaluation gives each item to exactly
    one process (no padding), so summed metrics equal a single process's. The checkpointed state
    is the number of training samples consumed.
    """

    train_set: Dataset | None = None
    val_set: Dataset | None = None
    test_set: Dataset | None = None

    def __init__(self, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers

    def _loader(self, dataset: Dataset, sampler: DistributedSampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=already_batched if hasattr(dataset, "__getitems__") else None,
        )

    def _distributed(self) -> bool:
        return self.trainer is not None and self.trainer.world_size > 1

    def train_dataloader(self) -> DataLoader:
        if self._distributed():
            return self._loader(
                self.train_set, DistributedSampler(self.train_set, self.trainer.world_size, self.trainer.global_rank, shuffle=False)
            )
        return self._loader(self.train_set)

    def _evaluation_loader(self, dataset: Dataset) -> DataLoader:
        if self._distributed():
            return self._loader(dataset, UnpaddedDistributedSampler(dataset, self.trainer.world_size, self.trainer.global_rank))
        return self._loader(dataset)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader(self.test_set)

    def state_dict(self) -> dict[str, int]:
        trainer = self.trainer
        per_step = trainer.accumulate_grad_batches * self.batch_size * trainer.world_size
        return {"samples_consumed": trainer.global_step * per_step}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.train_set.first_sample = state_dict["samples_consumed"]


class LanguageModelingDataModule(SampledDataModule):
    """Training batches of random windows, validation batches of sequential windows: ``(x, y)``,
    each ``(batch_size, block_size)`` int64, ``y`` being ``x`` shifted by one token.

    Args:
        train_tokens: 1-D array of training ids (usually a memmap).
        val_tokens: 1-D array of validation ids.
        block_size: tokens per input sequence; each window holds ``block_size + 1`` tokens.
        batch_size: windows per batch.
        num_train_samples: training windows in the run, all processes together
            (``max_steps`` x batch x accumulation x processes).
        seed: the sampler's seed.
        num_workers: DataLoader worker processes.

    Its checkpointed state is the number of training samples consumed, so a resumed run
    continues the sample sequence where the interrupted one stopped.

    Raises:
        DataError: a split shorter than ``block_size + 1`` tokens, named with its token count.
    """

    def __init__(
        self,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        num_train_samples: int,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.train_set = RandomWindows(train_tokens, block_size, num_train_samples, seed)
        self.val_set = SequentialWindows(val_tokens, block_size)
