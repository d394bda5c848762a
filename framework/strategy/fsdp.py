"""Fully sharded data parallel training with FSDP2 (``torch.distributed.fsdp.fully_shard``).

Parameters, gradients and optimizer state are split across processes (Zhao et al., 2023,
*PyTorch FSDP: Experiences on Scaling Fully Sharded Data Parallel*; the per-parameter
"FSDP2" design of PyTorch 2.4+). Lightning's ``ModelParallelStrategy`` creates the processes,
the device mesh and the distributed checkpoints; this module only decides what is sharded.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import torch
from pytorch_lightning.strategies import ModelParallelStrategy
from torch import nn

from framework.errors import ConfigError

MixedPrecision = Literal["auto", "bf16", "fp16", "none"]
_PARAM_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def sharding_units(model: nn.Module) -> list[nn.Module]:
    """The submodules sharded as one unit each: the model's ``sharding_units()`` (Transformer
    blocks, LSTM layers), or none for a model that does not say."""
    units = getattr(model, "sharding_units", None)
    return list(units()) if callable(units) else []


class FSDP2Strategy(ModelParallelStrategy):
    """Every process holds a 1/world_size shard of each unit's parameters, gradients and
    optimizer state; the whole world is one data-parallel dimension (no tensor parallelism).

    Each sharding unit (a Transformer block, the LSTM layers) gathers its parameters just
    before its forward and frees them after; the root module holds the rest (embeddings and a
    tied LM head). Works with ``nccl`` on GPUs and ``gloo`` on CPU.

    Args:
        mixed_precision: parameter dtype during forward/backward. ``auto`` is bf16 on CUDA and
            full precision on CPU; gradients are always reduced in float32.
        reshard_after_forward: free gathered parameters after each unit's forward (ZeRO-3);
            False keeps them until backward (ZeRO-2 style, more memory, less communication).
        save_distributed_checkpoint: each rank writes its own shard (a checkpoint directory in
            the ``torch.distributed.checkpoint`` format); ``python -m
            framework.consolidate`` turns one into a single file. False gathers
            the full state on rank 0 and writes one file.
        process_group_backend: ``gloo``/``nccl``; None picks by device.
    """

    def __init__(
        self,
        mixed_precision: MixedPrecision = "auto",
        reshard_after_forward: bool = True,
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
    ) -> None:
        if mixed_precision not in ("auto", "none", *_PARAM_DTYPES):
            raise ConfigError(f"trainer.strategy.mixed_precision={mixed_precision!r} is not one of auto, bf16, fp16, none.")
        super().__init__(
            data_parallel_size="auto",
            tensor_parallel_size=1,
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
        )
        self.mixed_precision = mixed_precision
        self.reshard_after_forward = reshard_after_forward

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath, storage_options: Any | None = None) -> None:
        """Write the checkpoint beside its destination, then move it into place.

        Every rank writes its shard into ``.<name>.partial``; after all have finished, rank 0
        swaps it for the previous checkpoint, so a crash mid-save leaves the previous
        checkpoint whole instead of a mix of old and new shards.
        """
        path = Path(self.broadcast(str(filepath)))
        partial, previous = path.with_name(f".{path.name}.partial"), path.with_name(f".{path.name}.previous")
        if self.is_global_zero:
            _remove(partial)
            _remove(previous)
        self.barrier()
        super().save_checkpoint(checkpoint, partial, storage_options)
        self.barrier()
        if self.is_global_zero:
            if path.exists():
                path.rename(previous)
            partial.rename(path)
            _remove(previous)
        self.barrier()

    def param_dtype(self) -> torch.dtype | None:
        """The dtype parameters are gathered in for compute; None keeps their own dtype."""
        if self.mixed_precision == "auto":
            return torch.bfloat16 if self.root_device.type == "cuda" else None
        return _PARAM_DTYPES.get(self.mixed_precision)

    def shard(self, model: nn.Module) -> None:
        """Apply ``fully_shard`` to each of ``model``'s sharding units, then to ``model`` itself.

        Called from the task's ``configure_model`` hook; a model already sharded is left as is.
        """
        from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

        if isinstance(model, FSDPModule):
            return
        mesh = self.device_mesh["data_parallel"]
        policy = MixedPrecisionPolicy(param_dtype=self.param_dtype(), reduce_dtype=torch.float32)
        for unit in sharding_units(model):
            fully_shard(unit, mesh=mesh, mp_policy=policy, reshard_after_forward=self.reshard_after_forward)
        fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=self.reshard_after_forward)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
