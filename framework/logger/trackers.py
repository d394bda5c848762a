"""Experiment trackers, selected by ``conf/logger``: Lightning loggers (a ``metrics.csv`` is always written too), W&B set-up and the run facts they record."""

from __future__ import annotations

import csv
import math
import netrc
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import hydra.utils
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.logger import rank_zero_experiment

from framework.logger.names import varying_overrides
from framework.process_env import sweep_name


def wandb_has_credentials() -> bool:
    """Whether W&B could log in: ``WANDB_API_KEY`` is set or ``~/.netrc`` has the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_run_id(save_dir: str | Path) -> str:
    """The W&B run id of the run directory ``save_dir``: created once (by rank 0), reused when it resumes.

    Other processes never start the W&B run (Lightning's logger is rank-zero only), so they
    neither create nor change the file.
    """
    path = Path(save_dir) / "wandb" / "run_id"
    if path.exists():
        return path.read_text().strip()
    if rank_zero_only.rank != 0:
        return "unused-on-this-rank"
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id + "\n")
    return run_id


def _hydra_job_facts() -> tuple[list[str], str | None]:
    """The running Hydra job's overrides and selected experiment, or ([], None) outside one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], None
    hydra_config = HydraConfig.get()
    return list(hydra_config.overrides.task), hydra_config.runtime.choices.get("experiment")


def wandb_logger(
    save_dir: str,
    project: str,
    mode: Literal["auto", "online", "offline", "disabled"] = "auto",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    **init_kwargs,
) -> Logger:
    """A Lightning ``WandbLogger`` whose files live in ``save_dir/wandb``.

    One run directory is one W&B run: the id is kept in ``save_dir/wandb/run_id``, so a
    resumed run continues the same W&B run (``resume="allow"``). In a sweep, runs share the
    sweep's name as ``group`` and are named by the overrides the sweep varies; the selected
    experiment is added to ``tags``. See :func:`define_wandb_metrics` for the step axis.

    Args:
        save_dir: the run directory.
        project: the W&B project.
        mode: ``auto`` logs online when credentials exist and offline otherwise (sync later
            with ``wandb sync``); ``online``, ``offline`` and ``disabled`` as in ``wandb.init``.
            ``WANDB_MODE`` in the environment takes precedence over ``auto``.
        name, group, tags: as in ``wandb.init``; None takes the sweep defaults above.
        **init_kwargs: passed to ``wandb.init`` (``job_type``, ``notes``...).
    """
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_credentials() else "offline")
    overrides, experiment = _hydra_job_facts()
    group = group or sweep_name()
    name = name or (varying_overrides(overrides) if group else None)
    tags = [*(tags or []), *([f"experiment:{experiment}"] if experiment else [])]
    from pytorch_lightning.loggers import WandbLogger  # imports wandb, which takes about a second

    # A W&B sweep agent chooses the run id itself (WANDB_RUN_ID); otherwise the run directory's id.
    run_id = os.environ.get("WANDB_RUN_ID") or wandb_run_id(save_dir)
    if "settings" not in init_kwargs:  # the run summary prints where the run is and how to sync it
        import wandb

        init_kwargs["settings"] = wandb.Settings(quiet=True)
    logger = WandbLogger(
        save_dir=save_dir,
        project=project,
        mode=mode,
        id=run_id,
        resume="allow",
        name=name,
        group=group,
        tags=tags,
        **init_kwargs,
    )
    # Lightning always passes anonymous=None to wandb.init, for which wandb warns on every run
    # that the setting has no effect.
    if logger._wandb_init.get("anonymous", False) is None:
        del logger._wandb_init["anonymous"]
    return logger


def _wandb_runs(loggers: list[Logger]) -> list:
    """The W&B runs of ``loggers``; none on processes other than rank 0, which start none."""
    from pytorch_lightning.loggers import WandbLogger  # does not import wandb itself

    if rank_zero_only.rank != 0:
        return []
    return [logger.experiment for logger in loggers if isinstance(logger, WandbLogger)]


def define_wandb_metrics(loggers: list[Logger], metric_directions: Mapping[str, str]) -> None:
    """Plot every W&B metric against ``trainer/global_step``; summarise each validation metric
    by its best value and its final one (``{"min": ..., "last": ...}``; ``metric_directions``:
    the task's ``METRICS``, ``min`` or ``max``)."""
    for run in _wandb_runs(loggers):
        run.define_metric("trainer/global_step")
        run.define_metric("*", step_metric="trainer/global_step")
        for name, direction in metric_directions.items():
            if name.startswith("val/"):
                run.define_metric(name, step_metric="trainer/global_step", summary=f"{direction},last")


def update_run_facts(loggers: list[Logger], facts: Mapping) -> None:
    """Replace the run facts logged under ``run`` in the tracker's config (status, final
    metrics, objective) with ``facts``, the run record as it ends."""
    for run in _wandb_runs(loggers):
        run.config.update({"run": dict(facts)}, allow_val_change=True)


def rows_before_step(metrics_file: Path, step: int) -> list[dict[str, str]]:
    """The rows of ``metrics_file`` a run resumed at ``step`` does not log again.

    That is every row before ``step``, and the validation rows at ``step`` itself (validation
    ran before that checkpoint was saved). Empty cells are dropped.
    """
    if not metrics_file.exists():
        return []
    with metrics_file.open(newline="") as file:
        rows = [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(file)]
    return [row for row in rows if int(row["step"]) < step or (int(row["step"]) == step and any(key.startswith("val/") for key in row))]


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger writing ``<run_dir>/metrics.csv``, continuing it on resume.

    Args:
        run_dir: the run directory.
        resume_step: the checkpoint's global step when resuming; the rows logged before it are
            kept and the rest is rewritten, so the file has each step once.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="")
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            metrics_file = Path(self.log_dir) / "metrics.csv"
            kept = rows_before_step(metrics_file, self.resume_step) if self.resume_step is not None else []
            writer = super().experiment  # removes the old file; the kept rows are written on the first save
            writer.metrics.extend(kept)
        return self._experiment


def build_loggers(run_dir: str | Path, config: Mapping, resume_step: int | None = None) -> list[Logger]:
    """``run_dir/metrics.csv`` first, then every logger in ``config`` (a ``conf/logger`` node)."""
    loggers: list[Logger] = [RunCSVLogger(run_dir, resume_step)]
    loggers.extend(hydra.utils.instantiate(node) for node in config.values() if node is not None)
    return loggers


def finish_loggers(loggers: list[Logger], failed: bool = False) -> None:
    """Close tracker runs (W&B) so their files are complete before the process moves on; a
    ``failed`` run ends with exit code 1, which W&B shows as failed."""
    for run in _wandb_runs(loggers):
        run.finish(exit_code=1 if failed else 0)


def log_sample(loggers: list[Logger], run_dir: Path, step: int, prompt: str, sample: str) -> None:
    """Append the sample to ``run_dir/samples.txt`` and log it as a W&B table row."""
    from pytorch_lightning.loggers import WandbLogger

    with (Path(run_dir) / "samples.txt").open("a") as file:
        file.write(f"=== step {step}, prompt {prompt!r}\n{sample}\n")
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_text(key="samples", columns=["step", "prompt", "sample"], data=[[step, prompt, sample]], step=step)


def best_logged_value(metrics_file: Path, name: str, mode: str) -> float:
    """The lowest (``mode="min"``) or highest (``"max"``) value of ``name`` in ``metrics_file``.

    Non-finite values count as worst; a metric never logged (or no file, as under
    ``fast_dev_run``, which turns loggers off) gives NaN.
    """
    if not Path(metrics_file).exists():
        return math.nan
    with Path(metrics_file).open(newline="") as file:
        values = [float(row[name]) for row in csv.DictReader(file) if row.get(name)]
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return math.nan
    return min(finite) if mode == "min" else max(finite)
