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
from tokenizers import Tokenizer

from framework.errors import DataError, MissingInputError

FORMAT = "lm-framework prepared dataset 1"


class ShardedTokens:
    """Several read-only memmaps read as one 1-D array of ids.

    Supports ``len()`` and indexing with an int64 array of positions of any shape (what the
    windows of :mod:`framework.data.datamodule` do), returning the ids in that shape.

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

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
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
            raise MissingInputError(
                f"data.path={self.directory} is not a prepared dataset (no manifest.json); make one with "
                "python -m framework.prepare input.path=<files>, and give the folder it prints."
            )
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
        for split in ("train", "val"):
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
