"""Learning-rate schedules, selected by ``conf/scheduler``. Stepped once per optimizer step."""

from __future__ import annotations

import logging
import math

import torch
from lightning_fabric.utilities.rank_zero import rank_zero_only
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)


def fitted_warmup(warmup_steps: int, max_steps: int) -> int:
    """``warmup_steps``, or a tenth of ``max_steps`` when the warmup would not end before the
    run does (a smoke test of a recipe with fewer steps than its warmup), said in a warning.
    ``max_steps`` <= 0 (not known) keeps ``warmup_steps``."""
    if 0 < max_steps <= warmup_steps:
        fitted = max_steps // 10
        if rank_zero_only.rank == 0:  # one warning per run, not per process
            log.warning(
                "scheduler.warmup_steps=%d does not end before trainer.max_steps=%d; warming up for %d steps (a tenth of the run) instead.",
                warmup_steps,
                max_steps,
                fitted,
            )
        return fitted
    return warmup_steps


def warmup_cosine_multiplier(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """LR multiplier for the optimizer update number ``step + 1`` (updates count from 1).

    Update k <= ``warmup_steps`` uses ``k / warmup_steps`` (linear warmup, Goyal et al., 2017);
    later updates follow a half cosine (Loshchilov & Hutter, 2017) from 1 down to ``min_ratio``
    at update ``max_steps``, and stay there.
    """
    k = step + 1
    if k <= warmup_steps:
        return k / warmup_steps
    progress = min(1.0, (k - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_ratio)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int, min_lr: float) -> LambdaLR:
    """Linear warmup then cosine decay from each group's ``lr`` to ``min_lr`` at ``max_steps``.

    Args:
        optimizer: its groups' ``lr`` is the peak learning rate.
        warmup_steps: optimizer steps of linear warmup (>= 0), shortened by :func:`fitted_warmup`
            when it would not end before ``max_steps``.
        max_steps: the run's optimizer steps (``trainer.max_steps``).
        min_lr: absolute learning rate (>= 0) reached at ``max_steps``.
    """
    warmup_steps = fitted_warmup(warmup_steps, max_steps)
    multipliers = [
        lambda step, ratio=(min_lr / group["lr"] if group["lr"] else 0.0): warmup_cosine_multiplier(step, warmup_steps, max_steps, ratio)
        for group in optimizer.param_groups
    ]
    return LambdaLR(optimizer, multipliers)


def constant(optimizer: torch.optim.Optimizer, warmup_steps: int = 0, max_steps: int = 0) -> LambdaLR:
    """The optimizer's ``lr`` throughout, after an optional linear warmup of ``warmup_steps``
    (>= 0; see :func:`fitted_warmup`)."""
    warmup_steps = fitted_warmup(warmup_steps, max_steps)
    return LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0)
