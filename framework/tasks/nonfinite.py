"""Non-finite training losses caught on the device, so an accelerator never waits for the host
to read the loss before it can go on with the step."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
