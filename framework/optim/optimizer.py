"""Optimizer construction, selected by ``conf/optimizer``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import hydra.utils
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from framework.errors import ConfigError
from framework.optim.muon import split_hidden_matrices, uses_muon

# The top-level module of a model's task head: new when fine-tuning (``model.init_from``).
HEAD_MODULE = "head"


@dataclass(frozen=True)
class FineTuning:
    """Learning rates by part of the model (``finetune`` in the run config).

    Attributes:
        head_lr: learning rate of the task head (``head.*``); None: ``optimizer.lr``.
        layer_decay: layer-wise learning-rate decay (Sun et al., 2019, *How to Fine-Tune BERT
            for Text Classification?*; Clark et al., 2020, *ELECTRA*, appendix A): a parameter at
            depth d trains at ``lr * layer_decay ** (D - d)``, with ``parameter_depths`` giving 0
            to the embeddings, i + 1 to block i and D = n_layer + 1 to the final LayerNorm (the
            top block gets ``lr * layer_decay``, as in BEiT, Bao et al., 2022; ELECTRA counts the
            head one deeper); 1 turns it off.
        freeze_steps: optimizer steps at the start during which every parameter outside the
            head has learning rate 0 (its weights unchanged; the optimizer's moments still
            accumulate).
    """

    head_lr: float | None = None
    layer_decay: float = 1.0
    freeze_steps: int = 0

    def __post_init__(self) -> None:
        if self.head_lr is not None and self.head_lr < 0:
            raise ConfigError(f"finetune.head_lr={self.head_lr} must be null (optimizer.lr) or >= 0.")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"finetune.layer_decay={self.layer_decay} must be in (0, 1]; 1 turns layer-wise decay off.")
        if self.freeze_steps < 0:
            raise ConfigError(f"finetune.freeze_steps={self.freeze_steps} must be 0 or more optimizer steps.")

    def check_model(self, model: nn.Module) -> None:
        """Raise ConfigError when ``model`` cannot take these options: layer-wise decay needs
        ``parameter_depths`` (the Transformer models), a head learning rate or a frozen body
        needs a ``head`` module (the classifiers)."""
        if self.layer_decay != 1.0 and not hasattr(model, "parameter_depths"):
            raise ConfigError(
                f"finetune.layer_decay={self.layer_decay} needs a model with layers ordered by depth (GPT, BERT and the "
                f"Transformer classifiers); {type(model).__name__} has none. Set finetune.layer_decay=1."
            )
        has_head = any(name.split(".")[0] == HEAD_MODULE for name, _ in model.named_parameters())
        if (self.head_lr is not None or self.freeze_steps) and not has_head:
            raise ConfigError(
                f"finetune.head_lr and finetune.freeze_steps act on a task head (head.*), which {type(model).__name__} does not "
                "have (a classifier has one). Set finetune.head_lr=null and finetune.freeze_steps=0."
            )

    @property
    def active(self) -> bool:
        return self.head_lr is not None or self.layer_decay != 1.0 or self.freeze_steps > 0


def parameter_groups(model: nn.Module, weight_decay: float, lr: float | None = None, finetune: FineTuning | None = None) -> list[dict]:
    """Split ``model``'s parameters into a decayed and a non-decayed group.

    Matrices and embedding tables (``dim >= 2``) get ``weight_decay``; biases and LayerNorm
    gains do not, following GPT-2/nanoGPT practice (Loshchilov & Hutter, 2019, for decoupled
    decay). Tied weights appear once. With :class:`FineTuning` options, each of the two is split
    further by part (``decay/head``, ``decay/body`` or ``decay/layer<d>``), each part with its
    ``lr`` and ``frozen_steps``.

    Returns:
        ``[{"name": "decay", ...}, {"name": "no_decay", ...}]``, each with ``params`` and
        ``weight_decay`` (and ``lr``, ``frozen_steps`` for parts).
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if finetune is None or not finetune.active:
        return [
            dict(name="decay", params=[p for _, p in named if p.dim() >= 2], weight_decay=weight_decay),
            dict(name="no_decay", params=[p for _, p in named if p.dim() < 2], weight_decay=0.0),
        ]
    depths = model.parameter_depths() if finetune.layer_decay != 1.0 else {}
    top = max(depths.values(), default=0)
    groups: dict[str, dict] = {}
    for name, parameter in named:
        kind = "decay" if parameter.dim() >= 2 else "no_decay"
        if name.split(".")[0] == HEAD_MODULE:
            part, part_lr, frozen = "head", finetune.head_lr if finetune.head_lr is not None else lr, 0
        else:
            depth = depths.get(name)
            part = "body" if depth is None else f"layer{depth}"
            part_lr = lr if depth is None else lr * finetune.layer_decay ** (top - depth)
            frozen = finetune.freeze_steps
        group = groups.setdefault(
            f"{kind}/{part}",
            dict(name=f"{kind}/{part}", params=[], weight_decay=weight_decay if kind == "decay" else 0.0, lr=part_lr, frozen_steps=frozen),
        )
        group["params"].append(parameter)
    return list(groups.values())


def configured_groups(model: nn.Module, config: Mapping, finetune: FineTuning | None = None) -> list[dict]:
    """The parameter groups the optimizer of ``config`` (a ``conf/optimizer`` node) gets:
    :func:`parameter_groups` with its ``weight_decay`` and ``lr``, and for
    :class:`~framework.optim.muon.MuonAdamW` the hidden matrices moved to Muon's groups
    (:func:`~framework.optim.muon.split_hidden_matrices`)."""
    groups = parameter_groups(model, float(config.get("weight_decay", 0.0)), config.get("lr"), finetune)
    if uses_muon(config):
        groups = split_hidden_matrices(groups, model, config["muon"], config.get("lr"))
    return groups


def build_optimizer(model: nn.Module, config: Mapping, finetune: FineTuning | None = None) -> torch.optim.Optimizer:
    """Instantiate the optimizer described by ``config`` over :func:`configured_groups`.

    ``config`` is a ``conf/optimizer`` node: ``_target_`` (a ``torch.optim`` class or
    :class:`~framework.optim.muon.MuonAdamW`), ``lr``,
    ``weight_decay`` and the class's own arguments (``betas``, ``momentum``, ...); the run's
    config check (``framework.run.schema``) has made ``lr`` and ``weight_decay`` >= 0. The
    groups are :func:`configured_groups`.
    """
    groups = configured_groups(model, config, finetune)
    config = {key: value for key, value in config.items() if key != "weight_decay"}
    return hydra.utils.instantiate(config, params=groups, _convert_="all")


def frozen_at_start(scheduler: LambdaLR) -> LambdaLR:
    """Make ``scheduler`` (a LambdaLR over :func:`parameter_groups`) give learning rate 0 to
    each group for its first ``frozen_steps`` optimizer steps; the schedule runs on unchanged
    (a frozen group joins at the rate the schedule has reached)."""
    for index, group in enumerate(scheduler.optimizer.param_groups):
        steps = group.get("frozen_steps", 0)
        if steps:
            scheduled = scheduler.lr_lambdas[index]
            scheduler.lr_lambdas[index] = lambda step, steps=steps, scheduled=scheduled: 0.0 if step < steps else scheduled(step)
            group["lr"] = scheduler.base_lrs[index] * scheduler.lr_lambdas[index](scheduler.last_epoch)
    return scheduler


def apply_configured_hyperparameters(
    model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, config: Mapping, finetune: FineTuning | None = None
) -> None:
    """Make a restored optimizer and LambdaLR schedule follow ``config`` again.

    Loading a checkpoint brings back each parameter group's ``lr``, ``weight_decay``, betas...
    and the schedule's base rates as they were when it was saved. A run resumed with changed
    values (say a new ``optimizer.lr``) must train with the new ones: this copies every
    hyperparameter of a freshly built optimizer into the restored groups (moment estimates and
    step counts stay), sets the schedule's base rates, and sets each group's rate for the
    current step from the schedule.
    """
    fresh = build_optimizer(model, config, finetune)
    for group, fresh_group in zip(optimizer.param_groups, fresh.param_groups):
        group.update({key: value for key, value in fresh_group.items() if key != "params"})
        group["initial_lr"] = fresh_group["lr"]
    scheduler.base_lrs = [group["lr"] for group in fresh.param_groups]
    for group, base_lr, multiplier in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base_lr * multiplier(scheduler.last_epoch)
