"""The end of a sweep: a table of its jobs (the swept values, the objective, the status), the best
job, the sweep directory and the command to compare the runs; printed and written to
``<sweep dir>/summary.md``. Read from each job's ``run.json``, so it covers every launcher and
sweeper (grid, Optuna; local, joblib, submitit)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from framework.run.comparison import HIGHER_IS_BETTER
from framework.run.record import read_record


@dataclass(frozen=True)
class Job:
    """One job of a sweep: its number, the values of the swept keys, its objective (NaN if none) and status."""

    number: str
    values: dict[str, str]
    objective: float
    status: str


def sweep_jobs(sweep_dir: Path, keys: list[str], metric: str) -> list[Job]:
    """The jobs under ``sweep_dir`` (directories ``<number>_<overrides>``), in job order.

    ``keys``: the swept override keys; a job's value is the one its command-line overrides give.
    """
    jobs = []
    directories = [path for path in sweep_dir.iterdir() if path.is_dir() and path.name.split("_", 1)[0].isdigit()]
    for directory in sorted(directories, key=lambda path: int(path.name.split("_", 1)[0])):
        record = read_record(directory) or {}
        overrides = dict(item.split("=", 1) for item in record.get("overrides", []) if "=" in item)
        values = {key: overrides.get(key, overrides.get(f"+{key}", "-")) for key in keys}
        objective = (record.get("objective") or {}).get(metric)
        jobs.append(
            Job(directory.name.split("_", 1)[0], values, math.nan if objective is None else objective, record.get("status", "no run.json"))
        )
    return jobs


def best_job(jobs: list[Job], metric: str) -> Job | None:
    """The job with the best finite objective (highest for accuracies, lowest for losses), or None."""
    scored = [job for job in jobs if math.isfinite(job.objective)]
    if not scored:
        return None
    return (max if metric in HIGHER_IS_BETTER else min)(scored, key=lambda job: job.objective)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (as a user would type it)."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def summary_markdown(sweep_dir: Path, jobs: list[Job], keys: list[str], metric: str) -> str:
    """The sweep's summary as Markdown: a heading, the best job, the table and the next command."""
    direction = "higher" if metric in HIGHER_IS_BETTER else "lower"
    best = best_job(jobs, metric)
    lines = [f"# Sweep {sweep_dir.name}", ""]
    lines.append(f"{len(jobs)} jobs in {_shown(sweep_dir)}; objective: best {metric} ({direction} is better).")
    if best is None:
        lines.append("No job reported an objective.")
    else:
        chosen = ", ".join(f"{key}={value}" for key, value in best.values.items())
        lines.append(f"Best: job {best.number} ({chosen}): {metric} {best.objective:.4f}.")
    lines += ["", "| job | " + " | ".join(keys) + f" | {metric} | status |", "|---" * (len(keys) + 3) + "|"]
    for job in jobs:
        cells = [job.number, *job.values.values(), f"{job.objective:.4f}", job.status]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Compare the runs (table, curves, an HTML report):",
        "",
        f"    python -m framework.compare {_shown(sweep_dir)} --html report.html",
        "",
    ]
    return "\n".join(lines)


def report_sweep(sweep_dir: Path, keys: list[str], metric: str, console: Console | None = None) -> Path:
    """Print the sweep's summary and write it to ``<sweep_dir>/summary.md``; return that path."""
    console = console or Console()
    jobs = sweep_jobs(sweep_dir, keys, metric)
    best = best_job(jobs, metric)
    table = Table(title=f"Sweep {sweep_dir.name}: {len(jobs)} jobs")
    for column in ("job", *keys, metric, "status"):
        table.add_column(column, overflow="fold", no_wrap=column in ("job", metric, "status"))
    for job in jobs:
        style = "bold green" if job is best else None
        table.add_row(job.number, *job.values.values(), f"{job.objective:.4f}", job.status, style=style)
    console.print(table)
    path = sweep_dir / "summary.md"
    path.write_text(summary_markdown(sweep_dir, jobs, keys, metric))
    if best is not None:
        console.print(f"Best: job {best.number}, {metric} {best.objective:.4f}", highlight=False)
    console.print(f"Sweep directory: {_shown(sweep_dir)} (summary.md)", highlight=False)
    console.print(f"Next: python -m framework.compare {_shown(sweep_dir)} --html report.html", highlight=False)
    return path
