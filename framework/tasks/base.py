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
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.utilities import GradClipAlgorithmType
from torch import nn

from framework.errors import TrainingDivergedError
from framework.optim import apply_configured_hyperparameters, build_optimizer
from framework.strategy import FSDP2Strategy
from framework.tasks.nonfinite import DeviceNonFiniteGuard, skips_steps_on_device

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
            batch with a warning. On one CUDA process with fused Adam or AdamW the check runs
            on the device (:meth:`uses_device_loss_check`): the bad step is skipped there at
            once, and the host learns of it every ``trainer.log_every_n_steps`` steps, before
            any checkpoint is written and at the end of training, where ``stop`` then raises.
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
        self.nonfinite_guard: DeviceNonFiniteGuard | None = None
        self.reported_nonfinite = 0  # non-finite losses the device guard found and the host has reported
        self.nonfinite_checked_at = -1  # global step of the guard's last read

    def uses_device_loss_check(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether non-finite losses are caught on the device (``DeviceNonFiniteGuard``) rather than
        read on the host each step: on CUDA, where that read stalls the GPU, with fused Adam or
        AdamW, automatic optimization (the flag is cleared in ``optimizer_step``), no fp16
        ``GradScaler`` (it owns the optimizer's ``found_inf``), no FSDP2 and one process: with
        several, the all-reduce would spread one rank's NaN gradients to ranks whose own flag
        is clear."""
        return (
            self.device.type == "cuda"
            and skips_steps_on_device(optimizer)
            and self.automatic_optimization
            and getattr(self.trainer.precision_plugin, "scaler", None) is None
            and self.trainer.world_size == 1
            and not isinstance(self.trainer.strategy, FSDP2Strategy)  # DTensor parameters: not tried
        )

    def checked_loss(self, loss: torch.Tensor) -> torch.Tensor | None:
        """``loss`` if finite; otherwise None (``skip``) or TrainingDivergedError (``stop``).
        Under the device guard, ``loss`` itself: the optimizer skips the step on the device."""
        step = self.global_step + 1
        if self.nonfinite_guard is not None:
            self.nonfinite_guard.record(loss, step)
            return loss
        if torch.isfinite(loss):
            return loss
        if self.on_nonfinite_loss == "skip":
            log.warning("Loss is %s at optimizer step %d; skipping this batch.", loss.item(), step)
            return None
        raise self.diverged(loss.item(), step)

    def diverged(self, loss: float, step: int, noticed_at: int | None = None) -> TrainingDivergedError:
        """The error for a ``loss`` that became non-finite at optimizer ``step``; ``noticed_at`` is
        the step at which the device guard's count was read, when it was."""
        skipped = (
            f" (read from the device at step {noticed_at}; that step and any later one with a "
            "non-finite loss were skipped on the device)" if noticed_at is not None else ""
        )
        return TrainingDivergedError(
            f"The training loss became {loss} at optimizer step {step}{skipped}; stopped before it could "
            "change the weights, so the last checkpoint is the last good state. Lower optimizer.lr, "
            "raise scheduler.warmup_steps or trainer.gradient_clip_val, or set task.on_nonfinite_loss=skip."
        )

    def report_nonfinite_losses(self) -> None:
        """Read the device guard: raise TrainingDivergedError (``stop``) or warn (``skip``) about
        non-finite losses not reported yet. Waits for the device."""
        self.nonfinite_checked_at = self.global_step
        found = self.nonfinite_guard.read()
        if found.count <= self.reported_nonfinite:
            return
        if self.on_nonfinite_loss == "stop":
            raise self.diverged(found.first_loss, found.first_step, noticed_at=self.global_step)
        log.warning(
            "%d more batches had a non-finite loss by optimizer step %d (the first, %s, at step %d); "
            "their optimizer steps were skipped.",
            found.count - self.reported_nonfinite, self.global_step, found.first_loss, found.first_step,
        )
        self.reported_nonfinite = found.count

    def optimizer_step(self, *args, **kwargs) -> None:
        """Lightning's step, then the device guard's flag cleared (an override must call this)."""
        super().optimizer_step(*args, **kwargs)
        if self.nonfinite_guard is not None:
            self.nonfinite_guard.step_done()

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

    # Steps between reads of the device guard when trainer.log_every_n_steps is 0.
    NONFINITE_READ_INTERVAL = 50

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        interval = self.trainer.log_every_n_steps or self.NONFINITE_READ_INTERVAL
        if self.nonfinite_guard is not None and self.global_step % interval == 0 and self.nonfinite_checked_at != self.global_step:
            self.report_nonfinite_losses()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.nonfinite_guard is not None:
            self.report_nonfinite_losses()

    def on_train_end(self) -> None:
        if self.nonfinite_guard is not None:
            self.report_nonfinite_losses()

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
        optimizer = self.optimizers().optimizer
        if self.checkpoint_step:  # resumed: the config's hyperparameters win over the checkpoint's
            apply_configured_hyperparameters(self.model, optimizer, self.lr_schedulers(), self.optimizer_config)
        self.nonfinite_guard = DeviceNonFiniteGuard(optimizer) if self.uses_device_loss_check(optimizer) else None
        self.reported_nonfinite, self.nonfinite_checked_at = 0, -1

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
