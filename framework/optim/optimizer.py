"""Optimizer construction, selected by ``conf/optimizer``."""

from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split ``model``'s parameters into a decayed and a non-decayed group.

    Matrices and embedding tables (``dim >= 2``) get ``weight_decay``; biases and LayerNorm
    gains do not, following GPT-2/nanoGPT practice (Loshchilov & Hutter, 2019, for decoupled
    decay). Tied weights appear once.

    Returns:
        ``[{"name": "decay", ...}, {"name": "no_decay", ...}]``, each with ``params`` and
        ``weight_decay``.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [
        dict(name="decay", params=[p for p in parameters if p.dim() >= 2], weight_decay=weight_decay),
        dict(name="no_decay", params=[p for p in parameters if p.dim() < 2], weight_decay=0.0),
    ]


def build_optimizer(model: nn.Module, config: Mapping) -> torch.optim.Optimizer:
    """Instantiate the optimizer described by ``config`` over :func:`parameter_groups`.

    ``config`` is a ``conf/optimizer`` node: ``_target_`` (a ``torch.optim`` class), ``lr``,
    ``weight_decay`` and the class's own arguments (``betas``, ``momentum``, ...); the run's
    config check (``framework.run.schema``) has made ``lr`` and ``weight_decay`` >= 0.
    """
    config = dict(config)
    weight_decay = float(config.pop("weight_decay", 0.0))
    return hydra.utils.instantiate(config, params=parameter_groups(model, weight_decay), _convert_="all")


def apply_configured_hyperparameters(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, config: Mapping) -> None:
    """Make a restored optimizer and LambdaLR schedule follow ``config`` again.

    Loading a checkpoint brings back each parameter group's ``lr``, ``weight_decay``, betas...
    and the schedule's base rates as they were when it was saved. A run resumed with changed
    values (say a new ``optimizer.lr``) must train with the new ones: this copies every
    hyperparameter of a freshly built optimizer into the restored groups (moment estimates and
    step counts stay), sets the schedule's base rates, and sets each group's rate for the
    current step from the schedule.
    """
    fresh = build_optimizer(model, config)
    for group, fresh_group in zip(optimizer.param_groups, fresh.param_groups):
        group.update({key: value for key, value in fresh_group.items() if key != "params"})
        group["initial_lr"] = fresh_group["lr"]
    scheduler.base_lrs = [group["lr"] for group in fresh.param_groups]
    for group, base_lr, multiplier in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base_lr * multiplier(scheduler.last_epoch)
