"""Values one process hands to the processes it starts, through environment variables.

Every launcher passes its environment on (Hydra's in-process, joblib and submitit launchers,
Lightning's re-launch of the command line, torchrun, srun), so these are the only channel that
reaches all of them. Nothing else in the framework reads or writes an environment variable of
its own.

- ``LM_FRAMEWORK_RANK_ZERO_CONFIG``: the fully resolved config of a run's rank 0, as JSON, for
  the processes Lightning starts for the other devices (:func:`share_rank_zero_config`).
- ``LM_FRAMEWORK_SWEEP_KEYS``: the comma-separated override keys a Hydra multirun varies, and
  ``LM_FRAMEWORK_SWEEP_NAME``: the sweep directory's name (:func:`record_sweep`); jobs name
  their directories and tracker runs after them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

RANK_ZERO_CONFIG = "LM_FRAMEWORK_RANK_ZERO_CONFIG"
SWEEP_KEYS = "LM_FRAMEWORK_SWEEP_KEYS"
SWEEP_NAME = "LM_FRAMEWORK_SWEEP_NAME"


def share_rank_zero_config(config: dict) -> None:
    """Hand rank 0's resolved ``config`` (plain containers) to the processes started after this call."""
    os.environ[RANK_ZERO_CONFIG] = json.dumps(config)


def rank_zero_config() -> dict | None:
    """The config :func:`share_rank_zero_config` handed down, or None."""
    shared = os.environ.get(RANK_ZERO_CONFIG)
    return json.loads(shared) if shared is not None else None


def record_sweep(keys: Sequence[str], name: str) -> None:
    """Record the swept override ``keys`` and the sweep's ``name`` for the sweep's jobs."""
    os.environ[SWEEP_KEYS] = ",".join(keys)
    os.environ[SWEEP_NAME] = name


def swept_keys() -> set[str]:
    """The override keys the running sweep varies; empty outside a sweep."""
    return set(filter(None, os.environ.get(SWEEP_KEYS, "").split(",")))


def sweep_name() -> str | None:
    """The running sweep's name (its directory name), or None outside a sweep."""
    return os.environ.get(SWEEP_NAME) or None
