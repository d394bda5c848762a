"""What every training task shares: optimizer and schedule from config, FSDP2 sharding,
compilation, resumed hyperparameters and the step axis of logged metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import hydra.utils
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.utilities import GradClipAlgorithmType
from torch import nn

from framework.optim import FineTuning, apply_configured_hyperparameters, build_optimizer, frozen_at_start
from framework.strategy import FSDP2Strategy


def _plain(config: Mapping | DictConfig) -> dict:
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)


class TrainingTask(pl.LightningModule):
    """Base LightningModule of the tasks in ``conf/task``.

    Args:
        model: the ``nn.Module`` being trained.
        optimizer: a ``conf/optimizer`` node (see ``framework.optim.build_optimizer``).
        scheduler: a ``conf/scheduler`` node whose ``_target_`` takes the optimizer first.
        compile_model: ``torch.compile`` the model in place (``nn.Module.compile``, lazily, at
            its first call) after FSDP sharding, so parameter names and checkpoints stay those
            of the eager model (``model.compile`` in the config).
        finetune: the run config's ``finetune`` node (learning rates by part, a frozen start;
            ``framework.optim.FineTuning``), or None.
    """

    # Subclasses: the kind of task (the models that fit it declare the same TASK_KIND), and
    # what they log, with whether lower ("min") or higher ("max") is better.
    KIND: ClassVar[str]
    METRICS: ClassVar[dict[str, str]] = {}

    def __init__(
        self, model: nn.Module, optimizer: Mapping, scheduler: Mapping, compile_model: bool = False, finetune: Mapping | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_config = _plain(optimizer)
        self.scheduler_config = _plain(scheduler)
        self.finetune = FineTuning(**_plain(finetune)) if finetune is not None else None
        self.compile_model = compile_model
        self.checkpoint_step = 0  # the global step of the loaded checkpoint, for evaluation runs

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip as Lightning does, except that bf16-mixed also clips for fused optimizers.

        Lightning refuses gradient clipping with a fused optimizer under any mixed precision,
        because fp16's ``GradScaler`` unscales gradients inside such a step; bf16-mixed has no
        scaler, so its gradients are clipped exactly as in full precision. (fp16 with a fused
        optimizer and clipping is refused by the config check.)
        """
        plugin = self.trainer.precision_plugin
        if isinstance(plugin, MixedPrecision) and plugin.scaler is None and gradient_clip_val:
            algorithm = GradClipAlgorithmType(gradient_clip_algorithm or self.trainer.gradient_clip_algorithm or "norm")
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, algorithm)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def log_training_loss(self, loss: torch.Tensor) -> None:
        """Log ``train/loss`` (also shown on the progress bar) on the optimizer steps whose
        metrics the loggers write: every ``trainer.log_every_n_steps``, and the last step.

        Lightning keeps only those steps' values, and one ``self.log`` call costs about as much
        Python time as the rest of its training loop, so the other steps skip it.
        """
        interval, step = self.trainer.log_every_n_steps, self.global_step + 1
        if (interval and step % interval == 0) or 0 < self.trainer.max_steps <= step:
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
            apply_configured_hyperparameters(
                self.model, self.optimizers().optimizer, self.lr_schedulers(), self.optimizer_config, self.finetune
            )

    def configure_model(self) -> None:
        """Shard the model when the strategy is FSDP2, then compile it if asked (Lightning calls
        this before optimizers exist; ``load_from_checkpoint`` calls it without a Trainer)."""
        if self._trainer is not None and isinstance(self.trainer.strategy, FSDP2Strategy):
            self.trainer.strategy.shard(self.model)
        if self.compile_model and self.model._compiled_call_impl is None:
            self.model.compile()

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_config, self.finetune)
        scheduler = frozen_at_start(hydra.utils.instantiate(self.scheduler_config, optimizer=optimizer))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
