"""BERT's masking of tokens for masked language modelling (Devlin et al., 2019, section 3.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import Dataset

from framework.data.classification_datamodule import EncodedSplit, ShuffledEpochs
from framework.data.datamodule import SampledDataModule
from framework.errors import ConfigError
from framework.tokenizer.wordpiece import SPECIAL_TOKENS

# The label of positions that carry no loss (PyTorch's cross-entropy default ignore_index).
IGNORE_INDEX = -100
# Validation masks come from this seed whatever the run's seed, so every run is scored on the
# same masked positions and replacements.
VALIDATION_MASK_SEED = 20190524
# Separates the masking draws of training sample i from other draws seeded by (seed, i).
MASKING_STREAM = 3


def check_mask_probability(probability: float) -> None:
    """Raise ConfigError unless ``0 < probability < 1`` (``task.mask_probability``)."""
    if not 0.0 < probability < 1.0:
        raise ConfigError(f"task.mask_probability={probability} must be in (0, 1); BERT masks 0.15 of the tokens.")


# The tokens masked language modelling needs in the tokenizer (BERT's, tokenizer=wordpiece).
MLM_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class MaskingScheme:
    """Which tokens are masked and what replaces them.

    Attributes:
        mask_id: the ``[MASK]`` token's id.
        vocab_size: random replacements are drawn uniformly from ids ``0 .. vocab_size - 1``.
        special_ids: ids never selected (``[CLS]``, ``[SEP]``, ``[PAD]``, ...).
        probability: the chance of each other real token to be selected (BERT: 0.15); of the
            selected, 80 % become ``[MASK]``, 10 % a random id and 10 % stay as they are
            (checked with the run's config: :func:`check_mask_probability`).
    """

    mask_id: int
    vocab_size: int
    special_ids: tuple[int, ...]
    probability: float = 0.15

    def apply(self, ids: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Mask ``ids`` (..., T) int64 where ``mask`` (..., T) bool marks real tokens.

        Returns ``(inputs, labels)``, both int64 of the shape of ``ids``: the inputs with the
        replacements made, and the original id at each selected position, :data:`IGNORE_INDEX`
        elsewhere (so the loss is taken on the selected positions only).
        """
        selectable = mask & ~np.isin(ids, self.special_ids)
        selected = selectable & (rng.random(ids.shape) < self.probability)
        choice = rng.random(ids.shape)
        to_mask = selected & (choice < 0.8)
        to_random = selected & (choice >= 0.8) & (choice < 0.9)
        inputs = np.where(to_mask, self.mask_id, ids)
        inputs = np.where(to_random, rng.integers(0, self.vocab_size, ids.shape), inputs)
        return inputs, np.where(selected, ids, IGNORE_INDEX)


def masking_scheme(tokenizer: Tokenizer, probability: float) -> MaskingScheme:
    """BERT's masking with ``tokenizer``'s ``[MASK]``, random replacements from its vocabulary;
    its special tokens are never masked.

    Raises:
        ConfigError: the tokenizer lacks one of :data:`MLM_TOKENS`.
    """
    missing = [token for token in MLM_TOKENS if tokenizer.token_to_id(token) is None]
    if missing:
        raise ConfigError(
            f"task=masked_language_modeling needs a tokenizer with {', '.join(MLM_TOKENS)}; this one lacks {', '.join(missing)}. "
            "Use tokenizer=wordpiece, or a BERT tokenizer (model.init_from=hf:<dir>)."
        )
    special = tuple(sorted(found for token in SPECIAL_TOKENS if (found := tokenizer.token_to_id(token)) is not None))
    return MaskingScheme(tokenizer.token_to_id("[MASK]"), tokenizer.get_vocab_size(), special, probability)


class MaskedSamples(ShuffledEpochs):
    """Training samples as :class:`ShuffledEpochs`, each masked anew: sample ``i`` is masked
    with draws seeded by ``(seed, i)``, so ranks, workers and resumed runs agree. Items:
    ``(inputs (T,) int64, mask (T,) bool, labels (T,) int64)``."""

    def __init__(self, split: EncodedSplit, num_samples: int, seed: int, scheme: MaskingScheme) -> None:
        super().__init__(split, num_samples, seed)
        self.scheme = scheme

    def __getitem__(self, index: int):
        sample = self.first_sample + index
        row = self.row(sample)
        rng = np.random.default_rng((self.seed, MASKING_STREAM, sample))
        inputs, labels = self.scheme.apply(self.split.ids[row], self.split.mask[row], rng)
        return torch.from_numpy(inputs), torch.from_numpy(self.split.mask[row]), torch.from_numpy(labels)


class FixedMasks(Dataset):
    """A split's examples in order, masked once with :data:`VALIDATION_MASK_SEED`; items as
    :class:`MaskedSamples`."""

    def __init__(self, split: EncodedSplit, scheme: MaskingScheme) -> None:
        self.mask = split.mask
        self.inputs, self.labels = scheme.apply(split.ids, split.mask, np.random.default_rng(VALIDATION_MASK_SEED))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.inputs[index]), torch.from_numpy(self.mask[index]), torch.from_numpy(self.labels[index])


class MaskedLanguageDataModule(SampledDataModule):
    """Batches ``(inputs, mask, labels)``: ``(B, max_length)`` int64, bool and int64 (labels
    :data:`IGNORE_INDEX` where no loss is taken).

    Args:
        train: the encoded training texts, or None to evaluate only. val: the validation texts.
        scheme: the masking. batch_size: examples per batch and process.
        num_train_samples: training samples in the run, all processes together.
        seed: shuffling and masking seed of the training samples.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        train: EncodedSplit | None,
        val: EncodedSplit,
        scheme: MaskingScheme,
        batch_size: int,
        num_train_samples: int,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.train_set = MaskedSamples(train, num_train_samples, seed, scheme) if train is not None else None
        self.val_set = FixedMasks(val, scheme)
