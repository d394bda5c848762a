"""A rich progress bar labelled for step-based runs."""

from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's RichProgressBar, labelled ``Training`` instead of ``Epoch 0/-2``.

    Runs here are bounded by ``max_steps``; Lightning then sets ``max_epochs=-1``, which the
    stock bar prints as an epoch count of -2.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is None or self.trainer.max_epochs < 0:
            return "Training"
        return super()._get_train_description(current_epoch)
