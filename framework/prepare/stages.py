"""Stages of a preparation: each one datatrove pipeline, its output in a folder named after a
hash of its settings and every earlier stage's, run on the configured executor.

``executor=local`` and ``executor=ray`` run the stages one after another and return when the
dataset is written; ``executor=slurm`` submits them as job arrays chained by ``--dependency``
and returns at once. A stage whose tasks all carry datatrove's completion markers is skipped;
an interrupted stage re-runs only its unfinished tasks, whose partial files it overwrites. So
changing a setting re-runs from the first stage it belongs to, and a killed preparation
completes on the next run.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from framework.cpus import usable_cpus
from framework.errors import ConfigError, DataError
from framework.prepare.console import console_warnings_only

EXECUTORS = ("local", "ray", "slurm")


def settings_hash(settings: dict) -> str:
    """sha256 of ``settings`` as canonical JSON (sorted keys): 64 hex digits."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Stage:
    """One datatrove pipeline over all its tasks.

    Args:
        name: the stage's name (``filter``, ``exact-signature``, ...), its folder's prefix.
        settings: everything besides earlier stages that decides its output (JSON-able).
        pipeline: builds the steps from its output folder and the output folders of the
            stages planned before it, by name.
        tasks: how many tasks it runs as (``None``: ``executor.tasks``).
        directory: a fixed folder for its logs (default ``<root>/<name>-<hash>``).
        output: a fixed output folder (default ``<directory>/output``).
        check: called after it has run here (not under Slurm), to refuse what it produced
            before later stages run.
    """

    name: str
    settings: dict
    pipeline: Callable[[Path, dict[str, Path]], list]
    tasks: int | None = None
    directory: Path | None = None
    output: Path | None = None
    check: Callable[[PlannedStage], None] | None = None


@dataclass
class PlannedStage:
    """A stage with its hash, folders and task count fixed."""

    stage: Stage
    hash: str
    directory: Path
    output: Path
    tasks: int

    @property
    def logs(self) -> Path:
        """datatrove's logging folder: completions, per-task logs and stats."""
        return self.directory / "logs"


@dataclass
class Chain:
    """Stages planned one after another under ``root``, each hash covering all before it.

    Args:
        root: the folder holding each stage's ``<name>-<12 hex digits>/`` folder.
        first_hash: the hash of what precedes the first stage (the input files).
        default_tasks: ``executor.tasks``.
    """

    root: Path
    first_hash: str
    default_tasks: int
    planned: list[PlannedStage] = field(default_factory=list)

    @property
    def hash(self) -> str:
        """The hash after the last planned stage."""
        return self.planned[-1].hash if self.planned else self.first_hash

    def folders(self) -> dict[str, Path]:
        """The output folder of each planned stage, by name."""
        return {planned.stage.name: planned.output for planned in self.planned}

    def add(self, stage: Stage, after: str | None = None) -> PlannedStage:
        """Plan ``stage`` after the stages so far (or after the hash ``after``)."""
        tasks = stage.tasks or self.default_tasks
        chained = settings_hash({"previous": after or self.hash, "stage": stage.name, "tasks": tasks, **stage.settings})
        directory = stage.directory or self.root / f"{stage.name}-{chained[:12]}"
        planned = PlannedStage(stage, chained, directory, stage.output or directory / "output", tasks)
        self.planned.append(planned)
        return planned


def check_executor(config) -> None:
    """Raise ConfigError for an unknown ``executor.kind``, counts below 1, or a setting left
    unset (``executor.partition`` for Slurm)."""
    unset = sorted(OmegaConf.missing_keys(config))
    if unset:
        raise ConfigError(f"executor.{unset[0]} is not set; give it on the command line (executor.{unset[0]}=...).")
    if config.kind not in EXECUTORS:
        raise ConfigError(f"executor.kind={config.kind!r}; valid kinds are {', '.join(EXECUTORS)}.")
    if config.tasks < 1:
        raise ConfigError(f"executor.tasks={config.tasks} must be at least 1.")
    if config.get("workers") is not None and config.workers < 1:
        raise ConfigError(f"executor.workers={config.workers} must be at least 1, or null (as many as the executor allows).")


def build_executor(config, planned: PlannedStage, folders: dict[str, Path], depends=None):
    """The datatrove executor of ``executor.kind`` for one planned stage."""
    pipeline = planned.stage.pipeline(planned.output, folders)
    common = {"pipeline": pipeline, "tasks": planned.tasks, "logging_dir": str(planned.logs), "depends": depends}
    if config.kind == "local":
        from framework.prepare.local_executor import QuietLocalPipelineExecutor

        return QuietLocalPipelineExecutor(**common, workers=min(planned.tasks, config.workers or usable_cpus()))
    if config.kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(
            **common, workers=config.workers or -1, cpus_per_task=config.cpus_per_task, mem_per_cpu_gb=config.mem_per_cpu_gb
        )
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        **common,
        workers=config.workers or -1,
        time=config.time,
        partition=config.partition,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_cpu_gb,
        job_name=f"lmf-{planned.stage.name}",
        sbatch_args=dict(config.sbatch_args or {}),
        env_command=config.env_command,
        slurm_logs_folder=str(planned.logs / "slurm"),
    )


def completed_ranks(planned: PlannedStage) -> set[int]:
    """Tasks of ``planned`` that carry datatrove's completion marker (written after the task's stats)."""
    folder = planned.logs / "completions"
    return {int(path.name) for path in folder.iterdir()} if folder.is_dir() else set()


@dataclass
class Progress:
    """A stage part-way: ``ranks`` (``done`` of them) of the ``todo`` tasks this run started
    with have finished after ``seconds``; tasks finished by an earlier, interrupted run are in
    neither."""

    planned: PlannedStage
    ranks: list[int]
    todo: int
    seconds: float

    @property
    def done(self) -> int:
        return len(self.ranks)

    @property
    def eta(self) -> float:
        """Seconds left at the rate so far (finished tasks per second, workers included);
        infinite before the first task has finished."""
        return self.seconds / self.done * (self.todo - self.done) if self.done else float("inf")


class _Watch(threading.Thread):
    """Calls ``report(Progress)`` each time more tasks of ``planned`` have finished, looking
    every ``interval`` seconds until stopped."""

    def __init__(self, planned: PlannedStage, report: Callable[[Progress], None], interval: float) -> None:
        super().__init__(daemon=True)
        self.planned, self.report, self.interval = planned, report, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        start, before = time.perf_counter(), completed_ranks(self.planned)
        reported = 0
        while not self.stopped.wait(self.interval):
            ranks = sorted(completed_ranks(self.planned) - before)
            if reported < len(ranks) < self.planned.tasks - len(before):
                self.report(Progress(self.planned, ranks, self.planned.tasks - len(before), time.perf_counter() - start))
                reported = len(ranks)


def run_stages(
    config,
    stages: list[tuple[PlannedStage, dict[str, Path]]],
    finished: Callable[[int, PlannedStage, float], None] = lambda *_: None,
    progress: Callable[[int, Progress], None] | None = None,
    interval: float = 10.0,
) -> bool:
    """Run (local, ray) or submit (slurm) the planned stages in order, each with the output
    folders it reads; return whether they have run (False: submitted to Slurm). ``finished``
    is called after each stage that ran here with its index, the stage and its wall time in
    seconds; ``progress``, while a stage runs, with its index and :class:`Progress` whenever
    more of its tasks have finished (looked at every ``interval`` seconds)."""
    if config.kind == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=config.address, log_to_driver=False)
    if config.kind == "slurm":
        executor = None
        for planned, folders in stages:
            executor = build_executor(config, planned, folders, depends=executor)
        executor.run()
        return False
    console_warnings_only()
    for index, (planned, folders) in enumerate(stages):
        start = time.perf_counter()
        executor = build_executor(config, planned, folders)
        watch = _Watch(planned, lambda state, index=index: progress(index, state), interval) if progress else None
        if watch:
            watch.start()
        try:
            executor.run()
        finally:
            if watch:
                watch.stopped.set()
                watch.join()
        incomplete = executor.get_incomplete_ranks()
        if incomplete:  # the Ray executor logs a task's error and returns; the local one raises it
            raise DataError(
                f"Stage {planned.stage.name}: {len(incomplete)} of {planned.tasks} tasks failed (tasks {incomplete[:10]}); "
                f"their errors are in {planned.logs / 'logs'}. Fix the cause and run the same command again: finished tasks are kept."
            )
        if planned.stage.check is not None:
            planned.stage.check(planned)
        finished(index, planned, time.perf_counter() - start)
    return True
