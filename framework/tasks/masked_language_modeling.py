"""Masked language modelling (BERT's pretraining objective) as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import SumMetric
from torchmetrics.classification import MulticlassAccuracy

from framework.data.masking import IGNORE_INDEX
from framework.tasks.base import TrainingTask


class MaskedLanguageModelingTask(TrainingTask):
    """Predict the original tokens at masked positions (Devlin et al., 2019): cross-entropy on
    the selected positions only. The masking itself (15 % of real, non-special tokens; 80 %
    ``[MASK]``, 10 % random, 10 % kept) happens in the data (``framework.data.masking``), fresh
    for every training sample and fixed for validation.

    Args:
        model: maps ``(ids (B, T) int64, mask (B, T) bool, predict_at=(B, T) bool)`` to logits
            ``(M, vocab_size)`` of the M selected positions (``framework.models.BertMaskedLM``).
        vocab_size: the model's vocabulary (the classes of ``val/mlm_acc``).
        mask_probability: the share of tokens selected, ``task.mask_probability``: the data
            masks (``framework.data.masking``; the config check keeps it in (0, 1)).
        optimizer, scheduler, compile_model, finetune: see :class:`~framework.tasks.base.TrainingTask`.

    Logged against ``trainer/global_step``: ``train/loss`` (nats per masked token of the batch),
    ``val/loss`` (nats per masked token over the validation set), ``val/ppl`` = exp(``val/loss``)
    and ``val/mlm_acc`` (share of masked tokens whose top prediction is the original token).
    """

    KIND = "masked_language_modeling"
    METRICS = {"train/loss": "min", "val/loss": "min", "val/ppl": "min", "val/mlm_acc": "max"}

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        vocab_size: int,
        mask_probability: float = 0.15,
        compile_model: bool = False,
        finetune: Mapping | None = None,
    ) -> None:
        super().__init__(model, optimizer, scheduler, compile_model, finetune)
        # Kept in checkpoints for load_from_checkpoint; the loggers get the run's config instead.
        self.save_hyperparameters(
            dict(optimizer=self.optimizer_config, scheduler=self.scheduler_config, vocab_size=vocab_size), logger=False
        )
        # Sums, not means, so they reduce correctly across processes and batches of any size.
        self.val_nats, self.val_masked = SumMetric(), SumMetric()
        self.val_accuracy = MulticlassAccuracy(vocab_size, average="micro", ignore_index=IGNORE_INDEX)

    def _masked_logits(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (M, V) float32 of the M masked positions and their original ids (M,)."""
        inputs, mask, labels = batch
        selected = labels != IGNORE_INDEX
        return self.model(inputs, mask, predict_at=selected).float(), labels[selected]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Mean cross-entropy over the masked tokens of the whole step's batch, all processes
        together: each process divides its sum by the total count (all-reduced) times the
        number of processes, so DDP's mean of the gradients is one process's gradient of the
        whole batch. Under gradient accumulation each micro-batch is averaged on its own."""
        logits, targets = self._masked_logits(batch)
        count = torch.tensor(float(targets.numel()), device=logits.device)
        world_size = self.trainer.world_size
        if world_size > 1:
            count = self.trainer.strategy.reduce(count, reduce_op="sum")
        loss = F.cross_entropy(logits, targets, reduction="sum") * world_size / count.clamp(min=1.0)
        self.log_training_loss(loss)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        logits, targets = self._masked_logits(batch)
        self.val_nats.update(F.cross_entropy(logits, targets, reduction="sum"))
        self.val_masked.update(targets.numel())
        labels = batch[2]
        predictions = torch.zeros_like(labels)
        predictions[labels != IGNORE_INDEX] = logits.argmax(dim=-1)
        self.val_accuracy.update(predictions, labels)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_nats.compute() / self.val_masked.compute()
        metrics = {"val/loss": loss, "val/ppl": torch.exp(loss), "val/mlm_acc": self.val_accuracy.compute()}
        for metric in (self.val_nats, self.val_masked, self.val_accuracy):
            metric.reset()
        self.log_evaluation(metrics)
