"""Sequence classification as a LightningModule, for any model mapping ``(ids, mask)`` to logits."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection, SumMetric
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
)

from framework.tasks.base import TrainingTask


def evaluation_metrics(num_classes: int) -> MetricCollection:
    """``acc``, ``f1`` and ``auroc`` (binary: positive class = index 1) or ``acc`` (micro) and
    macro ``f1`` (multi-class), from torchmetrics; they reduce correctly across processes."""
    if num_classes == 2:
        return MetricCollection({"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()})
    return MetricCollection(
        {"acc": MulticlassAccuracy(num_classes, average="micro"), "f1": MulticlassF1Score(num_classes, average="macro")}
    )


class ClassificationTask(TrainingTask):
    """Labelled-text classification: binary with one logit and binary cross-entropy (the
    classic sigmoid recipe), or multi-class with softmax cross-entropy.

    Args:
        model: maps ``(ids (B, T) int64, mask (B, T) bool)`` to logits ``(B, 1)`` for two
            classes or ``(B, num_classes)`` for more.
        num_classes: classes in the training split (>= 2).
        optimizer, scheduler, compile_model, finetune: see
            :class:`~framework.tasks.base.TrainingTask`.

    Logged against ``trainer/global_step``: ``train/loss`` (mean over the batch), ``val/loss``
    (mean over every evaluated example), ``val/acc``, ``val/f1`` and, for two classes,
    ``val/auroc``; evaluating the test split logs the same names under ``test/``.
    """

    KIND = "classification"
    METRICS = {
        "train/loss": "min",
        "val/loss": "min",
        "val/acc": "max",
        "val/f1": "max",
        "val/auroc": "max",
    }

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        num_classes: int,
        compile_model: bool = False,
        finetune: Mapping | None = None,
    ) -> None:
        super().__init__(model, optimizer, scheduler, compile_model, finetune)
        self.num_classes = num_classes
        # Kept in checkpoints for load_from_checkpoint; the loggers get the run's config instead.
        self.save_hyperparameters(
            dict(optimizer=self.optimizer_config, scheduler=self.scheduler_config, num_classes=num_classes), logger=False
        )
        self.metrics = nn.ModuleDict({stage: evaluation_metrics(num_classes) for stage in ("val", "test")})
        # Sums, not means, so they reduce correctly across processes and batches of any size.
        self.summed_loss = nn.ModuleDict({stage: SumMetric() for stage in ("val", "test")})
        self.examples = nn.ModuleDict({stage: SumMetric() for stage in ("val", "test")})

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, num_classes) float32."""
        return self._probabilities(self.model(ids, mask).float())

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.num_classes == 2:  # one logit: sigmoid of the positive class
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - positive, positive], dim=1)
        return logits.softmax(dim=-1)

    def _losses(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example losses (B,) and the scores the metrics take: the positive class's
        probability (B,) for two classes, class probabilities (B, C) for more."""
        ids, mask, labels = batch
        logits = self.model(ids, mask).float()
        probabilities = self._probabilities(logits)
        if self.num_classes == 2:
            return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float(), reduction="none"), probabilities[:, 1]
        return F.cross_entropy(logits, labels, reduction="none"), probabilities

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._losses(batch)[0].mean()
        self.log_training_loss(loss)
        return loss

    def _evaluation_step(self, stage: str, batch) -> None:
        losses, scores = self._losses(batch)
        self.metrics[stage].update(scores, batch[2])
        self.summed_loss[stage].update(losses.sum())
        self.examples[stage].update(losses.numel())

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step("test", batch)

    def _log_evaluation(self, stage: str) -> None:
        values = {f"{stage}/{name}": value for name, value in self.metrics[stage].compute().items()}
        values[f"{stage}/loss"] = self.summed_loss[stage].compute() / self.examples[stage].compute()
        for metric in (self.metrics[stage], self.summed_loss[stage], self.examples[stage]):
            metric.reset()
        self.log_evaluation(values)

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")
