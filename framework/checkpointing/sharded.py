"""Sharded checkpoints: the directories FSDP2 writes, one shard file per process.

The layout is Lightning's ``ModelParallelStrategy`` format: ``torch.distributed.checkpoint``
shards (``.metadata`` + ``__<rank>_0.distcp``) holding ``state_dict`` and ``optimizer_<i>``,
and ``meta.pt`` with everything else (step, loops, schedulers, our run metadata).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from framework.checkpointing.atomic_io import AtomicCheckpointIO, load_checkpoint_file
from framework.errors import CheckpointMismatchError, MissingInputError

METADATA_FILE = "meta.pt"
SHARD_INDEX_FILE = ".metadata"


def is_sharded_checkpoint(path: str | Path) -> bool:
    """True for a directory with ``meta.pt`` and a ``torch.distributed.checkpoint`` index."""
    path = Path(path)
    return path.is_dir() and (path / METADATA_FILE).is_file() and (path / SHARD_INDEX_FILE).is_file()


def read_checkpoint_summary(path: str | Path) -> dict[str, Any]:
    """A checkpoint's metadata and parameter shapes, without reading the parameters.

    For a file this is the checkpoint itself (memory-mapped). For a sharded directory it is
    ``meta.pt`` plus ``state_dict``: one ``meta``-device tensor (shape and dtype only) per
    parameter, read from the shard index.

    Raises:
        CheckpointMismatchError: a directory that is not a complete sharded checkpoint.
    """
    path = Path(path)
    if path.is_dir() and not is_sharded_checkpoint(path):
        raise CheckpointMismatchError(
            f"{path} is a directory but not a complete sharded checkpoint (it lacks {METADATA_FILE} or "
            f"{SHARD_INDEX_FILE}). Remove it to start the run afresh, or resume from another checkpoint."
        )
    if not is_sharded_checkpoint(path):
        return load_checkpoint_file(path)
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    summary = load_checkpoint_file(Path(path) / METADATA_FILE)
    prefix = "state_dict."
    summary["state_dict"] = {
        name[len(prefix) :]: torch.empty(entry.size, dtype=entry.properties.dtype, device="meta")
        for name, entry in FileSystemReader(str(path)).read_metadata().state_dict_metadata.items()
        if name.startswith(prefix) and isinstance(entry, TensorStorageMetadata)
    }
    return summary


def consolidated_path(path: Path) -> Path:
    """Where a sharded checkpoint's single file goes by default: ``last.ckpt`` -> ``last-consolidated.ckpt``."""
    return path.with_name(f"{path.stem}-consolidated.ckpt")


def _optimizer_state_by_index(state: dict[str, Any]) -> dict[str, Any]:
    """Re-key an optimizer state saved by parameter name (distributed format) by position, the
    way ``torch.optim.Optimizer.state_dict`` numbers parameters: in group order."""
    names = [name for group in state["param_groups"] for name in group["params"]]
    index = {name: position for position, name in enumerate(names)}
    return {
        "state": {index[name]: value for name, value in state["state"].items()},
        "param_groups": [{**group, "params": [index[name] for name in group["params"]]} for group in state["param_groups"]],
    }


def consolidate(path: str | Path, output: str | Path) -> Path:
    """Merge the sharded checkpoint ``path`` into one Lightning checkpoint file ``output``.

    The file has the layout of a single-process checkpoint (``state_dict`` with full tensors,
    ``optimizer_states`` keyed by parameter position, and every ``meta.pt`` entry), so
    evaluation, generation and ``LanguageModelingTask.load_from_checkpoint`` read it, and a
    single-process run can resume from it. It is written atomically; full tensors take as much
    host memory as the model and optimizer state.

    Raises:
        CheckpointMismatchError: ``path`` is not a sharded checkpoint directory.
        FileExistsError: ``output`` exists (it is never overwritten).
        MissingInputError: ``output``'s folder does not exist.
    """
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    path, output = Path(path), Path(output)
    if not is_sharded_checkpoint(path):
        raise CheckpointMismatchError(
            f"{path} is not a sharded checkpoint: expected a directory holding {METADATA_FILE} and "
            f"{SHARD_INDEX_FILE}, as strategy=fsdp writes (for example <run_dir>/checkpoints/last.ckpt)."
        )
    if output.exists():
        raise FileExistsError(f"{output} already exists; choose another --output or remove it first.")
    if not output.parent.is_dir():
        raise MissingInputError(f"The folder of {output} does not exist; create it or choose another --output.")
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        merged = Path(scratch) / "merged.pt"
        dcp_to_torch_save(str(path), str(merged))
        shards = torch.load(merged, map_location="cpu", weights_only=True)
    checkpoint = load_checkpoint_file(path / METADATA_FILE, mmap=False)
    checkpoint["state_dict"] = shards.pop("state_dict")
    optimizer_keys = sorted((key for key in shards if key.startswith("optimizer_")), key=lambda key: int(key.split("_")[1]))
    checkpoint["optimizer_states"] = [_optimizer_state_by_index(shards[key]) for key in optimizer_keys]
    AtomicCheckpointIO().save_checkpoint(checkpoint, output)
    return output
