"""Causal language modelling as a LightningModule, for any model mapping ids to logits."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

import hydra.utils
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchmetrics import SumMetric

from framework.errors import TrainingDivergedError
from framework.optim import apply_configured_hyperparameters, build_optimizer
from framework.strategy import FSDP2Strategy

log = logging.getLogger(__name__)


def _plain(config: Mapping | DictConfig) -> dict:
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)


class LanguageModelingTask(pl.LightningModule):
    """Next-token prediction with cross-entropy (Bengio et al., 2003), for GPT or LSTM models.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits.
        optimizer: a ``conf/optimizer`` node (see ``framework.optim.build_optimizer``).
        scheduler: a ``conf/scheduler`` node whose ``_target_`` takes the optimizer first.
        characters_per_token: ``(V,)`` float tensor, the characters each id stands for
            (``framework.tokenizer.characters_per_token``); None skips ``val/bpc``.
        on_nonfinite_loss: ``stop`` raises TrainingDivergedError naming the step, before the
            bad loss can change the weights (so no checkpoint holds NaNs); ``skip`` drops that
            batch with a warning.

    Logged, with the step axis ``trainer/global_step`` = optimizer steps taken: ``train/loss``
    (nats/token of the batch about to be stepped on), ``val/loss`` (nats/token over all
    evaluated validation tokens, for the weights after that many steps), ``val/ppl`` =
    exp(``val/loss``), ``val/bpc`` (bits per character of the evaluated text, exact for the
    windows evaluated), and through LearningRateMonitor ``lr/decay`` and ``lr/no_decay``.
    """

    # What this task logs, and whether lower or higher is better (for sweeps' objectives).
    METRICS = {"train/loss": "min", "val/loss": "min", "val/ppl": "min", "val/bpc": "min"}

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        characters_per_token: torch.Tensor | None = None,
        on_nonfinite_loss: Literal["stop", "skip"] = "stop",
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_config = _plain(optimizer)
        self.scheduler_config = _plain(scheduler)
        self.on_nonfinite_loss = on_nonfinite_loss
        self.save_hyperparameters(
            dict(optimizer=self.optimizer_config, scheduler=self.scheduler_config, on_nonfinite_loss=on_nonfinite_loss)
        )
        if characters_per_token is not None:
            self.register_buffer("characters_per_token", characters_per_token.float(), persistent=False)
        else:
            self.characters_per_token = None
        # Sums, not means, so they reduce correctly across processes and batches of any size.
        self.val_nats, self.val_tokens, self.val_characters = SumMetric(), SumMetric(), SumMetric()
        self.checkpoint_step = 0  # the global step of the loaded checkpoint, for evaluation runs

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, V) logits."""
        return self.model(idx)

    def _summed_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        logits = self.model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction="sum")

    def _metrics_step(self) -> int:
        """The global step metrics describe: the trainer's while fitting, the checkpoint's otherwise."""
        return self.global_step if self.trainer.state.fn == "fit" else self.checkpoint_step

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        loss = self._summed_loss(batch) / batch[1].numel()
        if not torch.isfinite(loss):
            step = self.global_step + 1
            if self.on_nonfinite_loss == "skip":
                log.warning("Loss is %s at optimizer step %d; skipping this batch.", loss.item(), step)
                return None
            raise TrainingDivergedError(
                f"The training loss became {loss.item()} at optimizer step {step}; stopped before it could "
                "change the weights, so the last checkpoint is the last good state. Lower optimizer.lr, "
                "raise scheduler.warmup_steps or trainer.gradient_clip_val, or set task.on_nonfinite_loss=skip."
            )
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        targets = batch[1]
        self.val_nats.update(self._summed_loss(batch))
        self.val_tokens.update(targets.numel())
        if self.characters_per_token is not None:
            self.val_characters.update(self.characters_per_token[targets].sum())

    def on_validation_epoch_end(self) -> None:
        nats, tokens = self.val_nats.compute(), self.val_tokens.compute()
        loss = nats / tokens
        metrics = {"val/loss": loss, "val/ppl": torch.exp(loss)}
        if self.characters_per_token is not None:
            metrics["val/bpc"] = nats / math.log(2) / self.val_characters.compute()
        for metric in (self.val_nats, self.val_tokens, self.val_characters):
            metric.reset()
        # A metric named "step" sets the x-axis value Lightning's loggers use for this row.
        # The values are already reduced over processes; sync_dist only keeps Lightning from warning.
        self.log_dict(metrics, prog_bar=True, sync_dist=True)
        self.log("step", float(self._metrics_step()), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_step = checkpoint["global_step"]

    def on_train_start(self) -> None:
        if self.checkpoint_step:  # resumed: the config's hyperparameters win over the checkpoint's
            scheduler = self.lr_schedulers()
            apply_configured_hyperparameters(self.model, self.optimizers().optimizer, scheduler, self.optimizer_config)

    def configure_model(self) -> None:
        """Shard the model when the strategy is FSDP2 (Lightning calls this before optimizers exist;
        ``load_from_checkpoint`` calls it without a Trainer)."""
        if self._trainer is not None and isinstance(self.trainer.strategy, FSDP2Strategy):
            self.trainer.strategy.shard(self.model)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_config)
        scheduler = hydra.utils.instantiate(self.scheduler_config, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
