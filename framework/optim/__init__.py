"""Optimizers (``conf/optimizer``) and learning-rate schedules (``conf/scheduler``)."""

from framework.optim.optimizer import apply_configured_hyperparameters, build_optimizer, parameter_groups
from framework.optim.scheduler import constant, warmup_cosine, warmup_cosine_multiplier

__all__ = [
    "apply_configured_hyperparameters",
    "build_optimizer",
    "constant",
    "parameter_groups",
    "warmup_cosine",
    "warmup_cosine_multiplier",
]
