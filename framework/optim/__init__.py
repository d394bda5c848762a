"""Optimizers (``conf/optimizer``) and learning-rate schedules (``conf/scheduler``)."""

from framework.optim.muon import MuonAdamW, hidden_matrices
from framework.optim.optimizer import (
    FineTuning,
    apply_configured_hyperparameters,
    build_optimizer,
    configured_groups,
    frozen_at_start,
    parameter_groups,
)
from framework.optim.scheduler import constant, warmup_cosine, warmup_cosine_multiplier

__all__ = [
    "FineTuning",
    "MuonAdamW",
    "apply_configured_hyperparameters",
    "build_optimizer",
    "configured_groups",
    "constant",
    "frozen_at_start",
    "hidden_matrices",
    "parameter_groups",
    "warmup_cosine",
    "warmup_cosine_multiplier",
]
