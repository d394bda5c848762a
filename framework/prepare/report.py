"""What a preparation reports on the console: datatrove's own log lines at warning level only,
and at the end a table of each stage's steps and the datasets' figures."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from framework.prepare.pipeline import Prepared


def quiet_datatrove() -> None:
    """Show datatrove's warnings and errors only (its per-task log files keep everything)."""
    from datatrove.utils.logging import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{time:HH:mm:ss} datatrove {level}: {message}")


def _step_name(step: str) -> str:
    """datatrove's step name without its type prefix: '🔻 - FILTER: length' -> 'FILTER: length'."""
    return step.split(" - ", 1)[-1]


def print_report(prepared: Prepared) -> None:
    """Print each dataset's steps (documents in, dropped, kept) and its splits, or where a
    Slurm preparation will write them."""
    console = Console()
    if not prepared.ran:
        console.print(
            f"Submitted to Slurm. When the jobs finish, {prepared.folder} holds the dataset; run the same command again "
            "to see its report (it submits nothing more)."
        )
        return
    for name, dataset in prepared.datasets.items():
        manifest = json.loads((dataset / "manifest.json").read_text())
        table = Table(title=f"{name}: {dataset}", title_justify="left")
        for column in ("stage", "step", "in", "dropped", "kept"):
            table.add_column(column, justify="left" if column in ("stage", "step") else "right")
        for stage in manifest["stages"]:
            for step in stage["steps"]:
                if "total" in step:
                    table.add_row(
                        stage["stage"],
                        _step_name(step["step"]),
                        f"{step['total']:,}",
                        f"{step.get('dropped', 0):,}",
                        f"{step.get('forwarded', step['total']):,}",
                    )
        console.print(table)
        for split, figures in manifest["splits"].items():
            console.print(f"{split}: {figures['documents']:,} documents, {figures['tokens']:,} tokens")
    console.print(
        f"Train on it with: data=prepared data.path={prepared.folder}"
        if len(prepared.datasets) == 1
        else "Train on them with: data=prepared data.mixture=["
        + ",".join(f"{{path:{path},weight:1}}" for path in prepared.datasets.values())
        + "]"
    )
