"""Causal language modelling as a LightningModule, for any model mapping ids to logits."""

from __future__ import annotations

import math
from collections.abc import Mapping

import hydra.utils
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchmetrics import MeanMetric

from framework.optim import build_optimizer


def _plain(config: Mapping | DictConfig) -> dict:
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)


class LanguageModelingTask(pl.LightningModule):
    """Next-token prediction with cross-entropy (Bengio et al., 2003), for GPT or LSTM models.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits.
        optimizer: a ``conf/optimizer`` node (see ``framework.optim.build_optimizer``).
        scheduler: a ``conf/scheduler`` node whose ``_target_`` takes the optimizer first.
        val_tokens_per_char: tokens per character of the validation split, to convert the loss
            in nats per token into bits per character; None skips ``val/bpc``.

    Logged (step axis: optimizer steps): ``train/loss`` (nats/token), ``val/loss`` (nats/token,
    averaged over all validation tokens), ``val/ppl`` = exp(``val/loss``), ``val/bpc`` =
    ``val/loss`` / ln 2 x tokens/char, and through LearningRateMonitor ``lr/decay`` and
    ``lr/no_decay``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        val_tokens_per_char: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_config = _plain(optimizer)
        self.scheduler_config = _plain(scheduler)
        self.val_tokens_per_char = val_tokens_per_char
        self.save_hyperparameters(
            dict(optimizer=self.optimizer_config, scheduler=self.scheduler_config, val_tokens_per_char=val_tokens_per_char)
        )
        self.val_loss = MeanMetric()  # token-weighted, reduced correctly across processes
        self.last_val_step = -1  # the global step of the latest logged validation

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, V) logits."""
        return self.model(idx)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        logits = self.model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.val_loss.update(self._loss(batch), weight=batch[1].numel())

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.val_loss.reset()
        metrics = {"val/loss": loss, "val/ppl": torch.exp(loss)}
        if self.val_tokens_per_char is not None:
            metrics["val/bpc"] = loss / math.log(2) * self.val_tokens_per_char
        self.log_dict(metrics, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.last_val_step = self.global_step

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_config)
        scheduler = hydra.utils.instantiate(self.scheduler_config, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
