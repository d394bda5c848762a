"""A dataset made by ``python -m framework.prepare``, opened for training.

Its folder holds ``train/`` and ``val/`` with datatrove's token shards (``*.ds``: flat
uint16 or uint32 ids, each document followed by the end-of-text token; ``*.ds.index``: uint64
document ends), ``tokenizer.json`` and ``manifest.json`` (format in
:mod:`framework.prepare.manifest`). Each split is the concatenation of its shards in name
order, mapped from disk, never loaded whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import Dataset

from framework.data.datamodule import (
    RELEASE_EVERY,
    SampledDataModule,
    SequentialWindows,
    check_split_length,
    release_mapped_pages,
    uniform_below,
)
from framework.data.prepared_format import FORMAT, SPLITS
from framework.errors import ConfigError, DataError, MissingInputError


class ShardedTokens:
    """Several read-only memmaps read as one 1-D array of ids.

    Supports ``len()``, slices (``tokens[a:b]``, a copy) and indexing with an int64 array of
    positions of any shape (what the windows of :mod:`framework.data.datamodule` do),
    returning the ids in that shape.

    Args:
        paths: the shard files, in order; empty files are skipped.
        dtype: ``uint16`` or ``uint32``.
    """

    def __init__(self, paths: list[Path], dtype: np.dtype) -> None:
        self.shards = [np.memmap(path, dtype=dtype, mode="r") for path in paths if path.stat().st_size]
        self.starts = np.cumsum([0] + [len(shard) for shard in self.shards])
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, positions: np.ndarray | slice) -> np.ndarray:
        if isinstance(positions, slice):
            positions = np.arange(*positions.indices(len(self)), dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        if len(self.shards) == 1:
            return self.shards[0][positions]
        which = np.searchsorted(self.starts, positions, side="right") - 1
        ids = np.empty(positions.shape, dtype=self.dtype)
        for shard in np.unique(which):
            chosen = which == shard
            ids[chosen] = self.shards[shard][positions[chosen] - self.starts[shard]]
        return ids


class PreparedCorpus:
    """A prepared dataset's splits and tokenizer, with the interface of
    :class:`framework.data.TokenizedCorpus` (``tokens``, ``tokenizer``, ``meta``, ``vocab_size``).

    Args:
        path: the dataset folder (``data.path``).

    Raises:
        MissingInputError: ``path`` holds no ``manifest.json``.
        DataError: a manifest of another format, or shards that do not hold its token counts.
    """

    def __init__(self, path: str | Path) -> None:
        self.directory = Path(path).expanduser()
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            inside = sorted(path.parent.name for path in self.directory.glob("*/manifest.json"))
            hint = (
                f"it holds the datasets {', '.join(inside)} of a several-source preparation: give one of them, or mix them with "
                "data.mixture=[{path: <folder>/<name>, weight: <w>}, ...]"
                if inside
                else "make one with python -m framework.prepare input.path=<files>, and give the folder it prints"
            )
            raise MissingInputError(f"data.path={self.directory} is not a prepared dataset (no manifest.json); {hint}.")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise DataError(f"{manifest_path} has format {manifest.get('format')!r}; this version reads {FORMAT!r}.")
        self.manifest = manifest
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.meta = {
            "tokens": {split: figures["tokens"] for split, figures in manifest["splits"].items()},
            "tokenizer_sha256": manifest["tokenizer"]["sha256"],
            "vocab_size": manifest["tokenizer"]["vocab_size"],
            "dtype": manifest["token_dtype"],
        }
        for split in SPLITS:
            found = len(self.tokens(split))
            if found != self.meta["tokens"][split]:
                raise DataError(
                    f"{self.directory / split} holds {found} tokens, the manifest says {self.meta['tokens'][split]}; "
                    "the dataset is incomplete or changed: prepare it again."
                )

    def tokens(self, split: str) -> ShardedTokens:
        """The ids of ``split`` (``train`` or ``val``), its shards in the manifest's order."""
        paths = [self.directory / split / name for name in self.manifest["splits"][split]["shards"]]
        return ShardedTokens(paths, np.dtype(self.meta["dtype"]))

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return self.meta["vocab_size"]


class MixtureWindows(Dataset):
    """``num_samples`` training windows drawn from several token streams by weight.

    Sample ``i`` takes its source from ``uniform_below(seed, 2 (first_sample + i))`` against
    the cumulative weights, and its offset in that source from ``uniform_below(seed,
    2 (first_sample + i) + 1)``: a function of ``(seed, i)`` alone, like
    :class:`~framework.data.datamodule.RandomWindows`, so workers, ranks and resumed runs
    reproduce it. Windows are taken across document separators (nanoGPT's and llm.c's way).

    Items: ``(x, y)``, both ``(block_size,)`` int64, ``y`` being ``x`` shifted by one token.

    Args:
        sources: each source's training ids (``ShardedTokens`` or a 1-D array).
        weights: positive, any scale; normalised here.
        block_size, num_samples, seed: as for ``RandomWindows``.
    """

    def __init__(self, sources: list, weights: list[float], block_size: int, num_samples: int, seed: int) -> None:
        for index, tokens in enumerate(sources):
            check_split_length(f"train (mixture source {index})", len(tokens), block_size)
        self.sources, self.block_size, self.num_samples, self.seed = sources, block_size, num_samples, seed
        self.cumulative = np.cumsum(np.asarray(weights, dtype=np.float64) / sum(weights))
        self.num_offsets = [len(tokens) - block_size for tokens in sources]
        self.offsets = np.arange(block_size + 1)
        self.first_sample, self.reads = 0, 0

    def __len__(self) -> int:
        return self.num_samples

    def choices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(source, start)`` of each sample in ``indices``: two int64 arrays of its shape."""
        counters = 2 * (self.first_sample + np.asarray(indices, dtype=np.int64))
        draws = uniform_below(self.seed, counters, 1 << 53) / float(1 << 53)
        source = np.minimum(np.searchsorted(self.cumulative, draws, side="right"), len(self.sources) - 1)
        start = np.empty_like(counters)
        for index in np.unique(source):
            chosen = source == index
            start[chosen] = uniform_below(self.seed, counters[chosen] + 1, self.num_offsets[index])
        return source, start

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: both ``(len(indices), block_size)`` int64."""
        before, self.reads = self.reads, self.reads + len(indices)
        if self.reads // RELEASE_EVERY > before // RELEASE_EVERY:
            for tokens in self.sources:
                release_mapped_pages(tokens)
        source, start = self.choices(np.asarray(indices, dtype=np.int64))
        windows = np.empty((len(indices), self.block_size + 1), dtype=np.int64)
        for index in np.unique(source):
            chosen = source == index
            windows[chosen] = self.sources[index][start[chosen][:, None] + self.offsets]
        windows = torch.from_numpy(windows)
        return windows[:, :-1], windows[:, 1:]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]


class PreparedMixture:
    """Several prepared datasets trained on together (``data.mixture``), with one tokenizer.

    Args:
        entries: ``[{"path": <dataset>, "weight": <w>}, ...]``.

    Raises:
        ConfigError: an empty mixture, a weight that is not positive, or datasets tokenized
            with different tokenizers (naming both).
        MissingInputError, DataError: see :class:`PreparedCorpus`.
    """

    def __init__(self, entries: list) -> None:
        if not entries:
            raise ConfigError("data.mixture is empty; give [{path: <dataset>, weight: <w>}, ...] or use data.path.")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise ConfigError(f"data.mixture[{index}]={entry!r} must be {{path: <dataset folder>, weight: <positive number>}}.")
            if not isinstance(entry.get("weight"), (int, float)) or entry["weight"] <= 0:
                raise ConfigError(f"data.mixture[{index}].weight={entry.get('weight')!r} must be a positive number.")
        self.corpora = [PreparedCorpus(entry["path"]) for entry in entries]
        self.weights = [float(entry["weight"]) for entry in entries]
        first = self.corpora[0]
        for corpus in self.corpora[1:]:
            if corpus.meta["tokenizer_sha256"] != first.meta["tokenizer_sha256"]:
                raise ConfigError(
                    f"data.mixture mixes datasets with different tokenizers: {first.directory} and {corpus.directory}; "
                    "prepare them together (input.sources.<name>.path) or with the same tokenizer.path."
                )
        self.names = [corpus.manifest.get("name") or corpus.directory.name for corpus in self.corpora]
        if len(set(self.names)) < len(self.names):
            self.names = [f"{index}_{name}" for index, name in enumerate(self.names)]
        self.tokenizer = first.tokenizer
        self.meta = {
            "tokens": {split: sum(corpus.meta["tokens"][split] for corpus in self.corpora) for split in SPLITS},
            "tokenizer_sha256": first.meta["tokenizer_sha256"],
            "vocab_size": first.meta["vocab_size"],
            "dtype": first.meta["dtype"],
        }

    @property
    def vocab_size(self) -> int:
        return self.meta["vocab_size"]


class MixtureDataModule(SampledDataModule):
    """Training windows drawn from several prepared datasets by weight
    (:class:`MixtureWindows`), and one validation loader per dataset (sequential windows), in
    the mixture's order; the task reports each and their token-weighted whole.

    Args:
        mixture: the datasets and weights.
        block_size, batch_size, num_train_samples, seed, num_workers: as for
            :class:`~framework.data.LanguageModelingDataModule`.

    Raises:
        DataError: a dataset split shorter than one window, named with the dataset.
    """

    def __init__(
        self, mixture: PreparedMixture, block_size: int, batch_size: int, num_train_samples: int, seed: int, num_workers: int = 0
    ) -> None:
        super().__init__(batch_size, num_workers)
        train = [corpus.tokens("train") for corpus in mixture.corpora]
        self.train_set = MixtureWindows(train, mixture.weights, block_size, num_train_samples, seed)
        self.val_sets = [
            SequentialWindows(corpus.tokens("val"), block_size, split=f"{name} val") for name, corpus in zip(mixture.names, mixture.corpora)
        ]

    def val_dataloader(self) -> list:
        return [self._evaluation_loader(dataset) for dataset in self.val_sets]
