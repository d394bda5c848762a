"""What a preparation reports on the console (datatrove's own log goes to each task's log file):
a line each time more tasks of a running stage have finished, a line per finished stage with the
number of warnings in its task logs, and at the end a table of each stage's steps and the
datasets' figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from framework.prepare.manifest import step_counters, step_label, task_stats
from framework.prepare.pipeline import Prepared
from framework.prepare.stages import PlannedStage, Progress


def documents_and_characters(stats: list[list[dict]]) -> tuple[int | None, int]:
    """Documents read (the first step that counts them) and their characters, over the tasks' ``stats``."""
    steps = step_counters(stats)
    documents = next((step.get("documents", step.get("total")) for step in steps if "documents" in step or "total" in step), None)
    return documents, next((step["doc_len"] for step in steps if "doc_len" in step), 0)


def print_stage(index: int, count: int, planned: PlannedStage, seconds: float) -> None:
    """One progress line for a stage that finished: documents and text read, rates."""
    documents, characters = documents_and_characters(task_stats(planned.logs))
    figures = ""
    if documents is not None and seconds >= 0.5:  # a stage already complete takes milliseconds: no rates
        figures = f": {documents:,} documents, {characters / 1e6:.1f} M characters, {documents / seconds:,.0f} documents/s, {characters / 1e6 / seconds:.1f} M characters/s"
    warnings = task_warnings(planned.logs / "logs")
    if warnings:
        figures += f"; datatrove logged {warnings} warning{'s' if warnings > 1 else ''}, in {planned.logs / 'logs'}"
    print(f"[{index + 1}/{count}] {planned.stage.name} in {seconds:.1f} s{figures}", file=sys.stderr, flush=True)


def task_warnings(folder: Path) -> int:
    """WARNING lines in the datatrove task logs ``task_<rank>.log`` of ``folder``, but for the
    tasks that got no input (more tasks than files: datatrove warns "No files found", then
    "No data saved", which says nothing about the data)."""
    logs = [path.read_text(errors="replace") for path in folder.glob("task_*.log")]
    return sum(log.count("| WARNING ") for log in logs if "No files found" not in log)


def progress_line(index: int, count: int, state: Progress) -> str:
    """A running stage's tasks done, its rates over the tasks this run finished, and the time left."""
    stats = [json.loads((state.planned.logs / "stats" / f"{rank:05d}.json").read_text()) for rank in state.ranks]
    documents, characters = documents_and_characters(stats)
    rates = f", {documents / state.seconds:,.0f} documents/s, {characters / 1e6 / state.seconds:.1f} M characters/s" if documents else ""
    minutes, seconds = divmod(round(state.eta), 60) if state.done else (None, None)
    eta = f"ETA {minutes} min {seconds:02d} s" if state.done else "ETA unknown"
    return f"[{index + 1}/{count}] {state.planned.stage.name}: {state.done}/{state.todo} tasks in {state.seconds:.0f} s{rates}, {eta}"


def print_progress(index: int, count: int, state: Progress) -> None:
    """Print :func:`progress_line` on stderr."""
    print(progress_line(index, count, state), file=sys.stderr, flush=True)


def print_report(prepared: Prepared) -> None:
    """Print each dataset's steps (documents in, dropped, kept) and its splits, or where a
    Slurm preparation will write them."""
    console = Console(width=None if sys.stdout.isatty() else 160)  # logs and pipes get the whole table
    if not prepared.finished:
        console.print(
            f"Submitted to Slurm. When the jobs finish, {prepared.folder} holds the dataset; run the same command again "
            "to see its report (it submits nothing more)."
        )
        return
    for name, dataset in prepared.datasets.items():
        manifest = json.loads((dataset / "manifest.json").read_text())
        title = f"Dataset {dataset}" + (f" (source {name})" if len(prepared.datasets) > 1 else "")
        table = Table(title=title, title_justify="left")
        for column in ("stage", "step", "in", "dropped", "kept", "tokens", "seconds"):
            table.add_column(column, justify="left" if column in ("stage", "step") else "right")
        for stage in manifest["stages"]:
            shown = [step for step in stage["steps"] if "total" in step or "tokens" in step]
            for position, step in enumerate(shown):
                total = step.get("total")
                table.add_row(
                    stage["stage"] if position == 0 else "",
                    step_label(step["step"]),
                    "" if total is None else f"{total:,}",
                    "" if total is None else f"{step.get('dropped', 0):,}",
                    "" if total is None else f"{total - step.get('dropped', 0):,}",
                    f"{step['tokens']:,}" if "tokens" in step else "",
                    f"{step.get('seconds', 0):.1f}",
                )
        console.print(table)
        for split, figures in manifest["splits"].items():
            console.print(f"{split}: {figures['documents']:,} document(s), {figures['tokens']:,} tokens")
    if len(prepared.datasets) == 1:
        hint = f"data=prepared data.path={prepared.folder}"
    else:
        hint = "data=prepared 'data.mixture=[" + ",".join(f"{{path:{path},weight:1}}" for path in prepared.datasets.values()) + "]'"
    print(f"Train on it with: python -m framework.train {hint}", flush=True)  # plain print: never wrapped, pastes as it is
