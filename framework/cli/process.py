"""What every entry point sets up once, before Hydra composes its config: warning filters for
Lightning messages that do not apply to this framework, and the config resolvers."""

from __future__ import annotations

import datetime
import functools
import logging
import os
import secrets
import warnings
from pathlib import Path

from omegaconf import OmegaConf

from framework.logger.names import varying_overrides
from framework.strategy.launch import launch_rank

# The run directory holds .hydra/, tokenizer.json and checkpoints/ of earlier attempts on purpose;
# the datamodules restore their sample position themselves, so a mid-epoch resume repeats nothing.
IGNORED_WARNINGS = (
    "Experiment logs directory .* exists and is not empty",
    "Checkpoint directory .* exists and is not empty",
    "You're resuming from a checkpoint that ended before the epoch ended",
    # Lightning's own call of a torch API it has not caught up with; nothing a user can change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # The summary's size estimate in bf16 runs; the parameter count it prints is exact.
    "Precision .* is not supported by the model summary",
    # conf/hydra/launcher/submitit_slurm.yaml keeps the plugin's option name, which users know, and
    # so is matched to the plugin's schema of that name, as intended; Hydra calls that deprecated.
    r"\s*'hydra/launcher/submitit_slurm' is validated against ConfigStore schema with the same name",
)


@functools.cache
def hydra_files_subdir(output_dir: str) -> str | None:
    """Where this process writes Hydra's files inside the run directory ``output_dir``:
    ``.hydra`` for a new run; ``.hydra/attempt-<time>`` when ``.hydra`` exists (a resumed run
    keeps the first attempt's files); None (no files) on processes other than rank 0. Decided
    once per process and directory."""
    if launch_rank() != 0:
        return None
    if (Path(output_dir) / ".hydra").is_dir():
        return f".hydra/attempt-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
    return ".hydra"


def log_file(path: str) -> str:
    """``path`` on rank 0; the null device on the other processes, which log to the console only."""
    return path if launch_rank() == 0 else os.devnull


def run_directory(resume: str, new_run_dir: str) -> str:
    """The run directory: the one ``resume`` names when it names one, else ``new_run_dir``."""
    return new_run_dir if resume in ("auto", "never") else str(Path(resume).expanduser())


def metric_direction(task_target: str, metric: str) -> str:
    """``minimize`` or ``maximize``: how a sweeper treats ``metric`` of the task ``task_target``."""
    import hydra.utils

    directions = getattr(hydra.utils.get_class(task_target), "METRICS", {})
    return "maximize" if directions.get(metric) == "max" else "minimize"


RESOLVERS = {
    "varying_overrides": lambda overrides: varying_overrides(list(overrides)),
    "metric_direction": metric_direction,
    "run_directory": run_directory,
    "hydra_files_subdir": hydra_files_subdir,
    "log_file": log_file,
}
# Cached (Hydra copies the cache into every job's config), so one sweep or run keeps one token,
# and one attempt keeps one subdirectory name.
CACHED_RESOLVERS = {"unique_token": lambda: secrets.token_hex(3)}


def configure_process() -> None:
    """Install the warning filters and register the resolvers conf/ uses (idempotent)."""
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    # Lightning's INFO lines (accelerators found, "Seed set to", tips for its cloud products,
    # "fit stopped: max_steps reached") say what the run's config and summary say; its warnings stay.
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
    for name, function in CACHED_RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)
