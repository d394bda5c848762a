"""Experiment trackers, selected by ``conf/logger``. A ``metrics.csv`` is always written too.

The names below load :mod:`framework.logger.trackers` on first use (PEP 562), so that
``framework.logger.names``, which every command uses, does not import PyTorch Lightning.
"""

import importlib

__all__ = [
    "RunCSVLogger",
    "best_logged_value",
    "build_loggers",
    "define_wandb_metrics",
    "finish_loggers",
    "log_sample",
    "update_run_facts",
    "wandb_logger",
    "wandb_run_id",
]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'framework.logger' has no attribute {name!r}")
    return getattr(importlib.import_module("framework.logger.trackers"), name)
