"""What a preparation reports on the console: datatrove's own log lines at warning level only,
and at the end a table of each stage's steps and the dataset's figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def quiet_datatrove() -> None:
    """Show datatrove's warnings and errors only (its per-task log files keep everything)."""
    from datatrove.utils.logging import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{time:HH:mm:ss} datatrove {level}: {message}")


def print_report(dataset: Path) -> None:
    """Print the steps' counters and the splits' tokens from ``dataset``'s manifest."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    table = Table(title=f"Prepared {dataset}")
    for column in ("stage", "step", "documents in", "dropped", "kept", "details"):
        table.add_column(column, justify="left" if column in ("stage", "step", "details") else "right")
    for stage in manifest["stages"]:
        for step in stage["steps"]:
            counts = {key: value for key, value in step.items() if key != "step"}
            total, dropped, kept = counts.pop("total", ""), counts.pop("dropped", ""), counts.pop("forwarded", "")
            details = ", ".join(f"{key}={value}" for key, value in counts.items() if not key.startswith("doc_len"))
            table.add_row(stage["stage"], step["step"], str(total), str(dropped), str(kept), details[:80])
    console = Console()
    console.print(table)
    for split, figures in manifest["splits"].items():
        console.print(f"{split}: {figures['documents']:,} documents, {figures['tokens']:,} tokens in {len(figures['shards'])} shards")
    console.print(f"Train on it with: data=prepared data.path={dataset}")
