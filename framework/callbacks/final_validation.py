"""Validate at the final step, inside ``fit``, so checkpoints and metrics describe the last weights."""

from __future__ import annotations

import pytorch_lightning as pl


class ValidateAtLastStep(pl.Callback):
    """Ask for a validation run after the step that reaches ``max_steps``.

    Lightning validates every ``val_check_interval`` batches only; when the interval does not
    divide ``max_steps`` the last weights would go unvalidated and unsaved. Setting
    ``should_stop`` on the last step makes the training loop run validation there (as early
    stopping does), so ModelCheckpoint saves ``last.ckpt`` and updates the best checkpoint.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True
