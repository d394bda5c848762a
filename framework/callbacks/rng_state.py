"""Random numbers during training that depend only on (seed, process, batch): resumable and per rank."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch


def batch_seed(seed: int, rank: int, batch_index: int) -> int:
    """A 63-bit seed for training batch ``batch_index`` (counted over the whole run) on process ``rank``."""
    return int(np.random.SeedSequence([seed, rank, batch_index]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


class SeedEachBatch(pl.Callback):
    """Seed torch's generators before every training batch from (seed, rank, batch index).

    Dropout then draws the same numbers whether a run was interrupted and resumed or not (no
    generator state needs saving), and different numbers on each process of a DDP run, whose
    processes train on different samples.

    Args:
        seed: the run's ``seed``.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        seed = batch_seed(self.seed, trainer.global_rank, trainer.fit_loop.total_batch_idx)
        # Only the generators this process uses: torch.manual_seed would also queue a CUDA
        # seeding call, with a captured stack trace, on every batch of a CPU run (about 2 ms
        # per step here, and a queue that only grows).
        torch.default_generator.manual_seed(seed)
        if pl_module.device.type == "cuda":
            torch.cuda.manual_seed(seed)
