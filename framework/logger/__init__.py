"""Experiment trackers, selected by ``conf/logger``. A ``metrics.csv`` is always written too."""

from __future__ import annotations

import netrc
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import hydra.utils
from pytorch_lightning.loggers import CSVLogger, Logger

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_has_credentials() -> bool:
    """Whether W&B could log in: ``WANDB_API_KEY`` is set or ``~/.netrc`` has the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(save_dir: str, project: str, mode: str = "auto", **init_kwargs) -> Logger:
    """A Lightning ``WandbLogger`` whose files live in ``save_dir/wandb``.

    Args:
        save_dir: the run directory.
        project: the W&B project.
        mode: ``auto`` logs online when credentials exist and offline otherwise (sync later
            with ``wandb sync``); ``online``, ``offline`` and ``disabled`` as in ``wandb.init``.
            ``WANDB_MODE`` in the environment takes precedence over ``auto``.
        **init_kwargs: passed to ``wandb.init`` (``name``, ``group``, ``tags``, ``job_type``...).

    Raises:
        ValueError: an unknown ``mode``.
    """
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}; valid modes are {', '.join(WANDB_MODES)}.")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_credentials() else "offline")
    from pytorch_lightning.loggers import WandbLogger  # imports wandb, which takes about a second

    return WandbLogger(save_dir=save_dir, project=project, mode=mode, **init_kwargs)


def build_loggers(run_dir: str | Path, config: Mapping) -> list[Logger]:
    """``run_dir/metrics.csv`` first, then every logger in ``config`` (a ``conf/logger`` node)."""
    # The run directory already holds .hydra/ and tokenizer.json; only metrics.csv is the CSV logger's.
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    loggers.extend(hydra.utils.instantiate(node) for node in config.values() if node is not None)
    return loggers


def finish_loggers(loggers: list[Logger]) -> None:
    """Close tracker runs (W&B) so their files are complete before the process moves on."""
    from pytorch_lightning.loggers import WandbLogger  # does not import wandb itself

    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
