"""Checkpoint files written atomically and read without executing code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


def load_checkpoint_file(path: str | Path, mmap: bool = True) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only), on CPU.

    ``mmap`` maps tensors from the file instead of reading them, so looking at a checkpoint's
    metadata costs little even for large models.
    """
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file under the final name.

    ``save_checkpoint`` writes a temporary file in the same directory, flushes it to disk and
    renames it over the destination (``os.replace`` is atomic on POSIX), so a crash mid-save
    keeps the previous ``last.ckpt`` loadable. ``load_checkpoint`` always loads with
    ``weights_only=True``, so a checkpoint file cannot run code.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, destination)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return super().load_checkpoint(path, map_location=map_location or "cpu", weights_only=True)
