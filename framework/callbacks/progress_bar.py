"""A rich progress bar labelled for step-based runs, redrawn at most ``refresh_rate`` times a second."""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's RichProgressBar, labelled ``Training`` instead of ``Epoch 0/-2``, and updated
    during training at most ``refresh_rate`` times a second (and at the last batch).

    Runs here are bounded by ``max_steps``; Lightning then sets ``max_epochs=-1``, which the
    stock bar prints as an epoch count of -2. The stock bar also updates its task and metrics
    on every batch and redraws from a thread that holds the GIL while it renders: on a 2-core
    CPU that cost about 1 ms of a 30 ms step (``benchmarks/throughput.py``).

    Args:
        refresh_rate: redraws per second; 0 disables the bar (as Lightning's).
        **kwargs: Lightning's ``RichProgressBar`` arguments (``leave``, ``theme``, ...).
    """

    def __init__(self, refresh_rate: int = 4, **kwargs) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._next_update = 0.0  # time.monotonic() seconds

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is None or self.trainer.max_epochs < 0:
            return "Training"
        return super()._get_train_description(current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.is_disabled:
            return
        now = time.monotonic()
        last = batch_idx + 1 >= trainer.num_training_batches or 0 < trainer.max_steps <= trainer.global_step
        if now < self._next_update and not last:
            return
        self._next_update = now + 1 / self.refresh_rate
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
