"""Optimizers (``conf/optimizer``) and learning-rate schedules (``conf/scheduler``)."""

from framework.optim.optimizer import FineTuning, apply_configured_hyperparameters, build_optimizer, frozen_at_start, parameter_groups
from framework.optim.scheduler import constant, warmup_cosine, warmup_cosine_multiplier

__all__ = [
    "FineTuning",
    "apply_configured_hyperparameters",
    "build_optimizer",
    "constant",
    "frozen_at_start",
    "parameter_groups",
    "warmup_cosine",
    "warmup_cosine_multiplier",
]
