"""Deciding whether a run resumes, and checking that a checkpoint fits the configured run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from framework.errors import CheckpointMismatchError, ConfigError

log = logging.getLogger(__name__)

RESUME_MODES = ("auto", "never")
# Config keys that may differ between attempts of one run without being hyperparameter changes.
IGNORED_CONFIG_PREFIXES = ("paths.", "resume", "threads", "logger.", "callbacks.progress")


def last_checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def resume_checkpoint(resume: str, run_dir: Path) -> Path | None:
    """The checkpoint this run continues from, or None for a fresh start.

    Args:
        resume: ``auto`` resumes from ``run_dir``'s ``last.ckpt`` when there is one; ``never``
            starts fresh and refuses a run directory that already holds a checkpoint (so it is
            not overwritten); any other value is a run directory, which the config has made the
            run directory (``hydra.run.dir``: ``${run_directory:...}`` in ``conf/hydra``), and which
            must hold a checkpoint.

    Raises:
        ConfigError: ``never`` with an existing checkpoint, or a run directory without one.
    """
    last = last_checkpoint_path(run_dir)
    if resume == "never":
        if last.exists():
            raise ConfigError(
                f"resume=never, but {run_dir} already holds {last.name}, which a fresh run would overwrite. "
                "Choose another run directory (hydra.run.dir=...) or drop resume=never to continue that run."
            )
        return None
    if resume != "auto" and not last.exists():
        raise ConfigError(f"resume={resume}: {last} does not exist, so there is nothing to resume from.")
    return last if last.exists() else None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_hyperparameters(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One line ``key: old -> new`` per config value that differs, ignoring paths and loggers."""
    before, after = flatten(saved), flatten(current)
    changes = []
    for key in sorted(set(before) | set(after)):
        if key.startswith(IGNORED_CONFIG_PREFIXES) or before.get(key) == after.get(key):
            continue
        changes.append(f"{key}: {before.get(key, '<absent>')!r} -> {after.get(key, '<absent>')!r}")
    return changes


def check_architecture(model: nn.Module, state_dict: Mapping[str, Any], prefix: str = "model.") -> None:
    """Raise CheckpointMismatchError unless ``state_dict`` has ``model``'s parameter names and shapes."""
    saved = {name[len(prefix) :]: tuple(value.shape) for name, value in state_dict.items() if name.startswith(prefix)}
    built = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    problems = [
        f"{name}: checkpoint {saved.get(name, 'absent')} vs model {built.get(name, 'absent')}"
        for name in sorted(set(saved) | set(built))
        if saved.get(name) != built.get(name)
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise CheckpointMismatchError(
            f"The checkpoint does not fit the configured model ({len(problems)} parameter(s) differ: {shown}). "
            "Resume with the model config the run started with, or start a new run directory."
        )


def check_resume_compatible(checkpoint: Mapping[str, Any], current_config: Mapping[str, Any], tokenizer_sha256: str) -> None:
    """Warn about changed hyperparameters; refuse a tokenizer that differs from the checkpoint's.

    Raises:
        CheckpointMismatchError: the checkpoint was trained with another tokenizer.
    """
    saved_sha = checkpoint.get("tokenizer_sha256")
    if saved_sha is not None and saved_sha != tokenizer_sha256:
        raise CheckpointMismatchError(
            f"The checkpoint was trained with tokenizer {saved_sha[:12]}, but this run's tokenizer is "
            f"{tokenizer_sha256[:12]} (different data, cleaning or tokenizer config), so token ids would "
            "not mean the same. Resume with the original data and tokenizer settings."
        )
    saved = OmegaConf.to_container(OmegaConf.create(checkpoint.get("run_config", {})), resolve=True)  # references kept in it
    changes = changed_hyperparameters(saved, current_config)
    if changes:
        log.warning("Resuming with %d changed config value(s):\n  %s", len(changes), "\n  ".join(changes))


def check_parameter_groups(checkpoint: Mapping[str, Any], group_names: list[str]) -> None:
    """Refuse a resume whose optimizer would have other parameter groups than the checkpoint's
    (``finetune.head_lr``, ``layer_decay`` or ``freeze_steps`` switched on or off): the saved
    optimizer state could not be loaded into it.

    Raises:
        CheckpointMismatchError: the groups differ, both lists named.
    """
    states = checkpoint.get("optimizer_states") or []
    if not states:  # a sharded checkpoint's summary holds no optimizer state
        return
    saved = [group.get("name") for group in states[0]["param_groups"]]
    if saved != group_names:
        raise CheckpointMismatchError(
            f"The checkpoint's optimizer has the parameter groups {saved}, but this run's settings make {group_names}: "
            "finetune.head_lr, finetune.layer_decay or finetune.freeze_steps differ from the run's start. Resume with the "
            "values the run started with, or start a new run directory."
        )
