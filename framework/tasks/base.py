"""What every training task shares: optimizer and schedule from config, FSDP2 sharding,
resumed hyperparameters, the non-finite loss policy and the step axis of logged metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import hydra.utils
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from framework.errors import TrainingDivergedError
from framework.optim import apply_configured_hyperparameters, build_optimizer
from framework.strategy import FSDP2Strategy

log = logging.getLogger(__name__)


def _plain(config: Mapping | DictConfig) -> dict:
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)


class TrainingTask(pl.LightningModule):
    """Base LightningModule of the tasks in ``conf/task``.

    Args:
        model: the ``nn.Module`` being trained.
        optimizer: a ``conf/optimizer`` node (see ``framework.optim.build_optimizer``).
        scheduler: a ``conf/scheduler`` node whose ``_target_`` takes the optimizer first.
        on_nonfinite_loss: ``stop`` raises TrainingDivergedError naming the step, before the
            bad loss can change the weights (so no checkpoint holds NaNs); ``skip`` drops that
            batch with a warning.
        compile_model: ``torch.compile`` the model in place (``nn.Module.compile``, lazily, at
            its first call) after FSDP sharding, so parameter names and checkpoints stay those
            of the eager model (``model.compile`` in the config).
    """

    # Subclasses: what they log, and whether lower ("min") or higher ("max") is better.
    METRICS: dict[str, str] = {}

    def __init__(
        self,
        model: nn.Module,
        optimizer: Mapping,
        scheduler: Mapping,
        on_nonfinite_loss: Literal["stop", "skip"] = "stop",
        compile_model: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_config = _plain(optimizer)
        self.scheduler_config = _plain(scheduler)
        self.on_nonfinite_loss = on_nonfinite_loss
        self.compile_model = compile_model
        self.checkpoint_step = 0  # the global step of the loaded checkpoint, for evaluation runs

    def checked_loss(self, loss: torch.Tensor) -> torch.Tensor | None:
        """``loss`` if finite; otherwise None (``skip``) or TrainingDivergedError (``stop``)."""
        if torch.isfinite(loss):
            return loss
        step = self.global_step + 1
        if self.on_nonfinite_loss == "skip":
            log.warning("Loss is %s at optimizer step %d; skipping this batch.", loss.item(), step)
            return None
        raise TrainingDivergedError(
            f"The training loss became {loss.item()} at optimizer step {step}; stopped before it could "
            "change the weights, so the last checkpoint is the last good state. Lower optimizer.lr, "
            "raise scheduler.warmup_steps or trainer.gradient_clip_val, or set task.on_nonfinite_loss=skip."
        )

    def log_training_loss(self, loss: torch.Tensor) -> None:
        """Log ``train/loss`` (also shown on the progress bar) on the optimizer steps whose
        metrics the loggers write, every ``trainer.log_every_n_steps``.

        Lightning keeps only those steps' values, and one ``self.log`` call costs about as much
        Python time as the rest of its training loop, so the other steps skip it.
        """
        interval = self.trainer.log_every_n_steps
        if interval and (self.global_step + 1) % interval == 0:
            self.log("train/loss", loss, prog_bar=True)

    def log_evaluation(self, metrics: dict[str, torch.Tensor]) -> None:
        """Log already-reduced evaluation metrics at the global step they describe: the
        trainer's while fitting, the checkpoint's when evaluating a saved one."""
        step = self.global_step if self.trainer.state.fn == "fit" else self.checkpoint_step
        # sync_dist only keeps Lightning from warning; a metric named "step" sets the loggers' x value.
        self.log_dict(metrics, prog_bar=True, sync_dist=True)
        self.log("step", float(step), sync_dist=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_step = checkpoint["global_step"]

    def on_train_start(self) -> None:
        if self.checkpoint_step:  # resumed: the config's hyperparameters win over the checkpoint's
            apply_configured_hyperparameters(self.model, self.optimizers().optimizer, self.lr_schedulers(), self.optimizer_config)

    def configure_model(self) -> None:
        """Shard the model when the strategy is FSDP2, then compile it if asked (Lightning calls
        this before optimizers exist; ``load_from_checkpoint`` calls it without a Trainer)."""
        if self._trainer is not None and isinstance(self.trainer.strategy, FSDP2Strategy):
            self.trainer.strategy.shard(self.model)
        if self.compile_model and self.model._compiled_call_impl is None:
            self.model.compile()

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_config)
        scheduler = hydra.utils.instantiate(self.scheduler_config, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
