"""Causal language modelling as a LightningModule, for any model mapping ids to logits."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import SumMetric

from framework.tasks.base import TrainingTask


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over positions of the cross-entropy in nats: ``(B, T, V)`` logits of any float dtype
    (computed in float32) and ``(B, T)`` int64 targets -> a float32 scalar."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction="sum")


class LanguageModelingTask(TrainingTask):
    """Next-token prediction with cross-entropy (Bengio et al., 2003), for GPT or LSTM models.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits.
        optimizer, scheduler, compile_model, finetune: see
            :class:`~framework.tasks.base.TrainingTask`.
        characters_per_token: ``(V,)`` float tensor, the characters each id stands for
            (``framework.tokenizer.characters_per_token``); None skips ``val/bpc``.
        bytes_per_token: ``(V,)`` float tensor, the UTF-8 bytes each id stands for
            (``framework.tokenizer.bytes_per_token``); None skips ``val/bpb``.
        val_sources: the names of several validation loaders (a data mixture's datasets), in
            order; each is also reported as ``val/<name>/loss`` and ``val/<name>/ppl``, and
            ``val/*`` are their token-weighted whole.

    Logged, with the step axis ``trainer/global_step`` = optimizer steps taken: ``train/loss``
    (nats/token of the batch about to be stepped on), ``val/loss`` (nats/token over all
    evaluated validation tokens, for the weights after that many steps), ``val/ppl`` =
    exp(``val/loss``), ``val/bpc`` (bits per character of the evaluated text, exact for the
    windows evaluated), ``val/bpb`` (bits per UTF-8 byte of the same text: independent of the
    tokenizer, as nanochat reports it), and through LearningRateMonitor ``lr/decay`` and ``lr/no_decay``.
    """

    KIND = "language_modeling"
    METRICS = {"train/loss": "min", "val/loss": "min", "val/ppl": "min", "val/bpc": "min", "val/bpb": "min"}

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        characters_per_token: torch.Tensor | None = None,
        bytes_per_token: torch.Tensor | None = None,
        compile_model: bool = False,
        finetune: Mapping | None = None,
        val_sources: list[str] | None = None,
    ) -> None:
        super().__init__(model, optimizer, scheduler, compile_model, finetune)
        # Kept in checkpoints for load_from_checkpoint; the loggers get the run's config instead.
        self.save_hyperparameters(dict(optimizer=self.optimizer_config, scheduler=self.scheduler_config), logger=False)
        for name, table in (("characters_per_token", characters_per_token), ("bytes_per_token", bytes_per_token)):
            if table is not None:
                self.register_buffer(name, table.float(), persistent=False)
            else:
                setattr(self, name, None)
        # Sums, not means, so they reduce correctly across processes and batches of any size.
        self.val_nats, self.val_tokens, self.val_characters, self.val_bytes = SumMetric(), SumMetric(), SumMetric(), SumMetric()
        self.val_sources = list(val_sources or [])
        self.source_nats = nn.ModuleList(SumMetric() for _ in self.val_sources)
        self.source_tokens = nn.ModuleList(SumMetric() for _ in self.val_sources)
        self.cross_entropy = summed_cross_entropy

    def configure_model(self) -> None:
        """Compile the loss with the model: fused, the float32 log-softmax over a large vocabulary
        is never written out whole (it is the largest tensor of a GPT-2-sized step)."""
        super().configure_model()
        if self.compile_model:
            self.cross_entropy = torch.compile(summed_cross_entropy)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, V) logits."""
        return self.model(idx)

    def _summed_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        return self.cross_entropy(self.model(inputs), targets)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._summed_loss(batch) / batch[1].numel()
        self.log_training_loss(loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        targets = batch[1]
        nats = self._summed_loss(batch)
        self.val_nats.update(nats)
        self.val_tokens.update(targets.numel())
        if self.val_sources:
            self.source_nats[dataloader_idx].update(nats)
            self.source_tokens[dataloader_idx].update(targets.numel())
        if self.characters_per_token is not None:
            self.val_characters.update(self.characters_per_token[targets].sum())
        if self.bytes_per_token is not None:
            self.val_bytes.update(self.bytes_per_token[targets].sum())

    def on_validation_epoch_end(self) -> None:
        nats, tokens = self.val_nats.compute(), self.val_tokens.compute()
        loss = nats / tokens
        metrics = {"val/loss": loss, "val/ppl": torch.exp(loss)}
        if self.characters_per_token is not None:
            metrics["val/bpc"] = nats / math.log(2) / self.val_characters.compute()
        if self.bytes_per_token is not None:
            metrics["val/bpb"] = nats / math.log(2) / self.val_bytes.compute()
        for name, source_nats, source_tokens in zip(self.val_sources, self.source_nats, self.source_tokens):
            source_loss = source_nats.compute() / source_tokens.compute()
            metrics.update({f"val/{name}/loss": source_loss, f"val/{name}/ppl": torch.exp(source_loss)})
            source_nats.reset()
            source_tokens.reset()
        for metric in (self.val_nats, self.val_tokens, self.val_characters, self.val_bytes):
            metric.reset()
        self.log_evaluation(metrics)
