"""The learning rate of each parameter group, logged once per optimizer step."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateMonitor


class StepLearningRateMonitor(LearningRateMonitor):
    """Lightning's ``LearningRateMonitor`` (``lr/decay``, ``lr/no_decay``), called only on the
    first micro-batch of each optimizer step: Lightning's own logs once per micro-batch under
    ``trainer.accumulate_grad_batches > 1``, which writes every logged step's rows that many
    times. Arguments as Lightning's."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx % trainer.accumulate_grad_batches == 0:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
