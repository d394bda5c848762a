"""Optimizers (``conf/optimizer``) and learning-rate schedules (``conf/scheduler``)."""

from framework.optim.optimizer import build_optimizer, parameter_groups
from framework.optim.scheduler import constant, warmup_cosine, warmup_cosine_multiplier

__all__ = ["build_optimizer", "constant", "parameter_groups", "warmup_cosine", "warmup_cosine_multiplier"]
