"""Non-finite training losses: the run stops naming the step, or the step is skipped, before the
bad loss can change the weights. On CUDA with a fused Adam/AdamW the check runs on the device,
so the accelerator never waits for the host to read the loss before it can go on with the step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from framework.errors import TrainingDivergedError
from framework.strategy import FSDP2Strategy

log = logging.getLogger(__name__)


def skips_steps_on_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` skips its whole step, state included, when its ``found_inf`` tensor
    is 1: torch's fused Adam and AdamW do (the mechanism ``torch.amp.GradScaler`` uses). Fused
    SGD is left out: a skipped first step leaves its momentum buffer uninitialised."""
    return isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW) and bool(getattr(optimizer, "_step_supports_amp_scaling", False))


@dataclass(frozen=True)
class NonFiniteLosses:
    """What :meth:`DeviceNonFiniteGuard.read` found: ``count`` batches with a non-finite loss
    since the start of training, the first since the previous read at optimizer step
    ``first_step`` (-1: none) with value ``first_loss`` (``nan``, ``inf`` or ``-inf``)."""

    count: int
    first_step: int
    first_loss: float


class DeviceNonFiniteGuard:
    """Makes a fused optimizer skip every step whose loss is not finite, with no host read per step.

    Reading a CUDA loss on the host (``if torch.isfinite(loss)``) makes the host wait for the
    forward pass before it can queue the backward pass, once per step; the GPU then idles while
    the host catches up. Here each loss instead sets, on the device, the optimizer's ``found_inf``
    flag, which the fused kernel reads: parameters, moments and step count stay unchanged for
    that step, as under ``torch.amp.GradScaler``. The flag accumulates over the micro-batches of
    one optimizer step (one bad micro-batch skips the step) and is cleared after it. The host
    reads the running count only in :meth:`read`, at moments it chooses.

    Args:
        optimizer: a torch optimizer for which :func:`skips_steps_on_device` holds; its
            parameters' device holds the counters.

    Raises:
        ValueError: ``optimizer`` cannot skip a step on the device.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        if not skips_steps_on_device(optimizer):
            raise ValueError(f"{type(optimizer).__name__} cannot skip steps on the device; use torch's Adam or AdamW with fused=True.")
        device = optimizer.param_groups[0]["params"][0].device
        self.found_inf = torch.zeros((), dtype=torch.float32, device=device)
        self.count = torch.zeros((), dtype=torch.int64, device=device)
        self.first_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.first_loss = torch.zeros((), dtype=torch.float32, device=device)
        optimizer.found_inf = self.found_inf

    def record(self, loss: torch.Tensor, step: int) -> None:
        """Note a scalar training ``loss`` of optimizer step ``step`` (1-based), on the device."""
        bad = ~torch.isfinite(loss.detach())
        first = bad & (self.first_step < 0)
        self.first_step.copy_(torch.where(first, step, self.first_step))
        self.first_loss.copy_(torch.where(first, loss.detach().float(), self.first_loss))
        self.found_inf.copy_(torch.maximum(self.found_inf, bad.float()))
        self.count.add_(bad)

    def step_done(self) -> None:
        """Clear the skip flag after the optimizer step it was meant for."""
        self.found_inf.zero_()

    def read(self) -> NonFiniteLosses:
        """The count so far and the first bad loss since the previous read; waits for the device
        to reach this point."""
        count, first_step, first_loss = torch.stack([self.count.double(), self.first_step.double(), self.first_loss.double()]).tolist()
        self.first_step.fill_(-1)
        return NonFiniteLosses(int(count), int(first_step), first_loss)


class NonFiniteLossGuard(pl.Callback):
    """Stop the run, or skip the optimizer step, when a training loss is NaN or infinite.

    ``stop`` raises :class:`~framework.errors.TrainingDivergedError` naming the optimizer step,
    before the bad loss can change the weights, so no checkpoint holds NaNs; ``skip`` drops
    that optimizer step with a warning (a bad micro-batch skips its whole accumulated step; one
    process only, which the run's config check makes sure of).

    On the host the loss is read before its backward pass (``on_before_backward``); a skipped
    step's gradients are dropped before the optimizer runs, which then leaves every parameter
    and its state unchanged. On one CUDA process with fused Adam or AdamW
    (:meth:`uses_device_check`) the check runs on the device (:class:`DeviceNonFiniteGuard`):
    the bad step is skipped there at once, and the host learns of it every
    ``trainer.log_every_n_steps`` steps (every 50 when that is 0), before any checkpoint is
    written and at the end of training, where ``stop`` then raises.

    Args:
        policy: ``stop`` or ``skip``.
    """

    READ_INTERVAL = 50  # steps between reads of the device guard when trainer.log_every_n_steps is 0

    def __init__(self, policy: Literal["stop", "skip"] = "stop") -> None:
        self.policy = policy
        self.device_guard: DeviceNonFiniteGuard | None = None
        self.reported = 0  # non-finite losses the device guard found and the host has reported
        self.checked_at = -1  # global step of the device guard's last read
        self.skip_step = False

    @staticmethod
    def uses_device_check(trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> bool:
        """Whether losses are checked on the device rather than read on the host each step: on
        CUDA, where that read stalls the GPU, with fused Adam or AdamW, automatic optimization, no
        fp16 ``GradScaler`` (it owns the optimizer's ``found_inf``), no FSDP2 (DTensor parameters:
        not tried) and one process: with several, the all-reduce would spread one rank's NaN
        gradients to ranks whose own flag is clear."""
        return (
            pl_module.device.type == "cuda"
            and skips_steps_on_device(optimizer)
            and pl_module.automatic_optimization
            and getattr(trainer.precision_plugin, "scaler", None) is None
            and trainer.world_size == 1
            and not isinstance(trainer.strategy, FSDP2Strategy)
        )

    def diverged(self, loss: float, step: int, noticed_at: int | None = None) -> TrainingDivergedError:
        """The error for a ``loss`` that became non-finite at optimizer ``step``; ``noticed_at`` is
        the step at which the device guard's count was read, when it was."""
        skipped = (
            f" (read from the device at step {noticed_at}; that step and any later one with a non-finite loss were skipped on the device)"
            if noticed_at is not None
            else ""
        )
        return TrainingDivergedError(
            f"The training loss became {loss} at optimizer step {step}{skipped}; stopped before it could "
            "change the weights, so the last checkpoint is the last good state. Lower optimizer.lr, "
            "raise scheduler.warmup_steps or trainer.gradient_clip_val, or set callbacks.nonfinite_loss.policy=skip."
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.device_guard = DeviceNonFiniteGuard(optimizer) if self.uses_device_check(trainer, pl_module, optimizer) else None
        self.reported, self.checked_at, self.skip_step = 0, -1, False

    def on_before_zero_grad(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        """A new optimizer step begins: the previous step's skip flag is spent."""
        self.skip_step = False
        if self.device_guard is not None:
            self.device_guard.step_done()

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        step = trainer.global_step + 1
        if self.device_guard is not None:
            self.device_guard.record(loss, step)
        elif not torch.isfinite(loss):
            if self.policy == "stop":
                raise self.diverged(loss.item(), step)
            log.warning("Loss is %s at optimizer step %d; skipping this step.", loss.item(), step)
            self.skip_step = True

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        if self.skip_step:  # the optimizer leaves parameters without gradients, and their state, alone
            optimizer.zero_grad(set_to_none=True)

    def report(self, trainer: pl.Trainer) -> None:
        """Read the device guard: raise (``stop``) or warn (``skip``) about non-finite losses not
        reported yet. Waits for the device."""
        self.checked_at = trainer.global_step
        found = self.device_guard.read()
        if found.count <= self.reported:
            return
        if self.policy == "stop":
            raise self.diverged(found.first_loss, found.first_step, noticed_at=trainer.global_step)
        log.warning(
            "%d more batches had a non-finite loss by optimizer step %d (the first, %s, at step %d); their optimizer steps were skipped.",
            found.count - self.reported,
            trainer.global_step,
            found.first_loss,
            found.first_step,
        )
        self.reported = found.count

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        interval = trainer.log_every_n_steps or self.READ_INTERVAL
        if self.device_guard is not None and trainer.global_step % interval == 0 and self.checked_at != trainer.global_step:
            self.report(trainer)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.device_guard is not None:
            self.report(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.device_guard is not None:
            self.report(trainer)
