"""``run.json``: what is needed to know, and redo, what a run did."""

from __future__ import annotations

import datetime
import json
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from framework.run.stored_config import start_directory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "omegaconf", "tokenizers", "torchmetrics", "wandb", "numpy", "lm-framework")


def git_state(directory: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git checkout holding the code."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run's numbers depend on, and Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def hydra_overrides() -> list[str]:
    """The command-line overrides of the running Hydra job, or [] outside one."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def hydra_choices() -> dict[str, str | None]:
    """The option of each config group the running Hydra job composed (``{"model": "gpt",
    "experiment": None, ...}``; Hydra's own groups left out), or {} outside one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices)
    return {group: option for group, option in choices.items() if not group.startswith("hydra")}


def new_record(cfg: DictConfig) -> dict[str, Any]:
    """The facts of a run starting now (see the README's "What a run produces")."""
    return {
        "command": [sys.executable, "-m", "framework.train", *sys.argv[1:]]
        if Path(sys.argv[0]).stem in ("train", "lmf-train")
        else sys.argv,
        "overrides": hydra_overrides(),
        "choices": hydra_choices(),
        "cwd": str(start_directory()),
        "git": git_state(),
        "versions": package_versions(),
        "hostname": socket.gethostname(),
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "seed": cfg.seed,
        "torch_threads": torch.get_num_threads(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def facts(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its ``config``: what trackers get under ``run`` beside the config."""
    return {key: value for key, value in record.items() if key != "config"}


def write_record(run_dir: Path, record: dict[str, Any], write: bool = True) -> None:
    """Write ``run_dir/run.json`` atomically (``write=False``: on processes other than the first)."""
    if not write:
        return
    temporary = run_dir / "run.json.tmp"
    temporary.write_text(json.dumps(record, indent=2, default=str) + "\n")
    temporary.replace(run_dir / "run.json")


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/run.json`` as a dict, or None when the run has none."""
    path = run_dir / "run.json"
    return json.loads(path.read_text()) if path.exists() else None


def start_record(run_dir: Path, cfg: DictConfig, resumed_from_step: int | None, parameters: int, write: bool = True) -> dict[str, Any]:
    """Create ``run.json``, or for a resumed run add this attempt to the existing record.

    ``parameters`` is the model's number of distinct parameters.
    """
    record = read_record(run_dir) if resumed_from_step is not None else None
    attempt = new_record(cfg)
    if record is None:
        record = {**attempt, "parameters": parameters, "resumes": [], "status": "running"}
    else:
        record["resumes"].append(
            {key: attempt[key] for key in ("command", "overrides", "git", "hostname", "started_at")} | {"from_step": resumed_from_step}
        )
        record.update(status="running", config=attempt["config"])
        record.setdefault("choices", attempt["choices"])  # a record written before run.json had them
    write_record(run_dir, record, write)
    return record


def end_record(run_dir: Path, record: dict[str, Any], status: str, error: BaseException, write: bool = True) -> None:
    """Mark the run ``interrupted`` or ``failed``, with the error's message and type name."""
    record.update(
        status=status,
        error=str(error),
        error_type=type(error).__name__,
        ended_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
    )
    write_record(run_dir, record, write)


def finish_record(
    run_dir: Path,
    record: dict[str, Any],
    step: int,
    metrics: dict[str, float],
    objective: dict[str, float],
    processes: list[dict[str, Any]],
    write: bool = True,
) -> None:
    """Mark the run finished with its final step, final validation metrics, sweep objective and
    the facts of each process (``framework.strategy.processes``)."""
    record.update(
        status="finished",
        ended_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        final={"step": step, "metrics": metrics},
        objective=objective,
        processes=processes,
    )
    write_record(run_dir, record, write)
