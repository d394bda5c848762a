"""Stages of a preparation: each one datatrove pipeline run by the configured executor, its
output cached in a directory named after a hash of its settings and every earlier stage's.

A stage whose tasks all carry datatrove's completion markers is skipped; an interrupted stage
re-runs only its unfinished tasks, whose partial files it overwrites. So changing a setting
re-runs from the first stage it belongs to, and a killed preparation completes on the next run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from framework.cpus import usable_cpus
from framework.errors import ConfigError

EXECUTORS = ("local",)


def settings_hash(settings: dict) -> str:
    """sha256 of ``settings`` as canonical JSON (sorted keys): 64 hex digits."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Stage:
    """One datatrove pipeline over all tasks.

    Args:
        name: the stage's name (``filter``, ``exact-signature``, ...), also its folder's prefix.
        settings: everything besides earlier stages that decides its output (JSON-able).
        pipeline: builds the steps from this stage's output folder.
        tasks: how many tasks it runs as (``None``: ``executor.tasks``).
    """

    name: str
    settings: dict
    pipeline: Callable[[Path], list]
    tasks: int | None = None


@dataclass
class StageRun:
    """Where a stage ran and what its steps counted: datatrove's stats of each task, in task order."""

    name: str
    directory: Path
    stats: list[list[dict]]


class StageRunner:
    """Runs stages in order on the configured executor, chaining their hashes.

    Args:
        executor_config: ``cfg.executor`` (``kind``, ``tasks``, ``workers``).
        root: the folder holding each stage's ``<name>-<hash>/`` folder.
        first_hash: the hash of what precedes the first stage (the input files).

    Raises:
        ConfigError: an unknown ``executor.kind``, or ``tasks``/``workers`` below 1.
    """

    def __init__(self, executor_config, root: Path, first_hash: str) -> None:
        if executor_config.kind not in EXECUTORS:
            raise ConfigError(f"executor.kind={executor_config.kind!r}; valid kinds are {', '.join(EXECUTORS)}.")
        if executor_config.tasks < 1 or (executor_config.workers is not None and executor_config.workers < 1):
            raise ConfigError(
                f"executor.tasks={executor_config.tasks} and executor.workers={executor_config.workers} must be at least 1 "
                "(workers may be null: the CPUs this process may use)."
            )
        self.config, self.root, self.hash = executor_config, root, first_hash
        self.runs: list[StageRun] = []

    def directory(self, stage: Stage) -> Path:
        """The folder of ``stage`` after the stages run so far: ``<root>/<name>-<12 hex digits>``."""
        return self.root / f"{stage.name}-{self._chained(stage)[:12]}"

    def _chained(self, stage: Stage) -> str:
        return settings_hash({"previous": self.hash, "stage": stage.name, "tasks": stage.tasks or self.config.tasks, **stage.settings})

    def run(self, stage: Stage, directory: Path | None = None, output: Path | None = None) -> StageRun:
        """Run ``stage`` (skipping tasks already complete) with datatrove's logs in
        ``directory/logs`` (default :meth:`directory`) and its output in ``output`` (default
        ``directory/output``)."""
        from datatrove.executor import LocalPipelineExecutor

        directory = directory or self.directory(stage)
        self.hash = self._chained(stage)
        tasks = stage.tasks or self.config.tasks
        workers = min(tasks, self.config.workers or usable_cpus())
        executor = LocalPipelineExecutor(
            pipeline=stage.pipeline(output or directory / "output"), tasks=tasks, workers=workers, logging_dir=str(directory / "logs")
        )
        executor.run()
        stats = [json.loads(path.read_text()) for path in sorted((directory / "logs" / "stats").glob("*.json"))]
        run = StageRun(stage.name, directory, stats)
        self.runs.append(run)
        return run
