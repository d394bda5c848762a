"""The step that training metrics are logged at: the optimizer steps taken, also after a resume."""

from __future__ import annotations

import pytorch_lightning as pl


class LogAtGlobalStep(pl.Callback):
    """Make Lightning log training metrics at ``trainer.global_step``.

    Lightning logs them at its own count of batches that stepped, which it restores from a
    checkpoint and corrects by one only when the checkpoint was saved at a validation inside an
    epoch; from a checkpoint saved as a run ended, the resumed run would log its first step
    twice and never its last. Both count optimizer steps, so before every batch (and before any
    other callback logs) the count is set to the global step. Put it first in the Trainer's
    callbacks.
    """

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
