"""Padded labelled examples for classification, served as a LightningDataModule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.data.datamodule import SampledDataModule


@dataclass(frozen=True)
class EncodedSplit:
    """One split, encoded: ``ids`` (N, max_length) int64, ``mask`` (N, max_length) bool (True on
    real tokens), ``labels`` (N,) int64 class indices (None for unlabelled text)."""

    ids: np.ndarray
    mask: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def example(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.ids[index]), torch.from_numpy(self.mask[index]), torch.tensor(self.labels[index])


class ShuffledEpochs(Dataset):
    """``num_samples`` training samples: epoch after epoch, each a fresh seeded permutation.

    Sample ``i`` is example ``permutation(seed, epoch)[i % N]`` with ``epoch = i // N``, which
    depends only on ``(seed, first_sample + i)``, so ranks, workers and resumed runs agree (as
    :class:`~framework.data.datamodule.RandomWindows` for language modelling).
    """

    def __init__(self, split: EncodedSplit, num_samples: int, seed: int) -> None:
        self.split, self.num_samples, self.seed = split, num_samples, seed
        self.first_sample = 0
        self._permutations: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_samples

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng((self.seed, epoch)).permutation(len(self.split))}
        return self._permutations[epoch]

    def row(self, sample: int) -> int:
        """The split's row that sample number ``sample`` (counted from the run's start) reads."""
        epoch, position = divmod(sample, len(self.split))
        return int(self._permutation(epoch)[position])

    def __getitem__(self, index: int):
        return self.split.example(self.row(self.first_sample + index))


class SequentialExamples(Dataset):
    """A split's examples in file order (validation and test)."""

    def __init__(self, split: EncodedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        return self.split.example(index)


class ClassificationDataModule(SampledDataModule):
    """Batches ``(ids, mask, labels)``: ``(B, max_length)`` int64, ``(B, max_length)`` bool, ``(B,)`` int64.

    Args:
        train, val: the encoded splits; ``train`` may be None to evaluate only, ``test`` None
            without a test split.
        batch_size: examples per batch and process.
        num_train_samples: training samples in the run, all processes together
            (``max_steps`` x batch x accumulation x processes).
        seed: the shuffling seed.
        num_workers: DataLoader worker processes.

    Sampling across processes and the checkpointed state are as in
    :class:`~framework.data.datamodule.SampledDataModule`.
    """

    def __init__(
        self,
        train: EncodedSplit | None,
        val: EncodedSplit,
        batch_size: int,
        num_train_samples: int,
        seed: int,
        num_workers: int = 0,
        test: EncodedSplit | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.train_set = ShuffledEpochs(train, num_train_samples, seed) if train is not None else None
        self.val_set = SequentialExamples(val)
        self.test_set = SequentialExamples(test) if test is not None else None
