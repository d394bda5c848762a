"""Re-run a finished run from its ``run.json`` and compare the final metrics.

``lmf-reproduce <run_dir> [--into <new_run_dir>]`` or ``python -m framework.reproduce ...``

The run is repeated with the same overrides, from the same working directory, into a new
run directory (``<run_dir>-reproduced`` by default); then a table shows each final
validation metric of both runs and their difference. A different git commit or a dirty
checkout is reported, since either can explain differences.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from framework.cli.precheck import user_errors_exit
from framework.cli.usage import epilog
from framework.errors import ConfigError, MissingInputError
from framework.run.record import git_state, read_record


def reproduce_command(record: dict, run_dir: Path) -> list[str]:
    """The training command that repeats ``record``'s run into ``run_dir``, starting fresh."""
    overrides = [item for item in record["overrides"] if not item.startswith(("resume=", "hydra."))]
    return [sys.executable, "-m", "framework.train", *overrides, f"hydra.run.dir={run_dir}", "resume=never"]


def comparison_table(original: dict[str, float], reproduced: dict[str, float]) -> Table:
    """Rows ``metric | original | reproduced | difference`` for every metric of either run."""
    table = Table(title="Final validation metrics")
    for column in ("metric", "original", "reproduced", "difference"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in sorted(set(original) | set(reproduced)):
        before, after = original.get(name), reproduced.get(name)
        difference = f"{after - before:+.3g}" if before is not None and after is not None else "-"
        table.add_row(name, f"{before:.6f}" if before is not None else "-", f"{after:.6f}" if after is not None else "-", difference)
    return table


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``lmf-reproduce`` (its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m framework.reproduce",
        description=__doc__.splitlines()[0],
        epilog=epilog("reproduce", ("python -m framework.reproduce logs/runs/mine",)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a finished run directory holding run.json")
    parser.add_argument("--into", type=Path, help="the new run directory (default: <run_dir>-reproduced)")
    return parser


def main(arguments: list[str] | None = None) -> int:
    """Parse arguments, re-run, print the comparison; return the training command's exit status."""
    options = build_parser().parse_args(arguments)
    console = Console()
    with user_errors_exit():
        record = read_record(options.run_dir)
        if record is None or "final" not in record:
            raise MissingInputError(f"{options.run_dir} has no run.json of a finished run, so there is nothing to reproduce.")
        target = (options.into or options.run_dir.with_name(options.run_dir.name + "-reproduced")).resolve()
        if target.exists():
            raise ConfigError(f"{target} already exists; pass --into <new directory> to reproduce the run elsewhere.")
        changed = [resume for resume in record["resumes"] if resume.get("overrides", record["overrides"]) != record["overrides"]]
        if changed:
            console.print(
                f"[yellow]Note:[/] the run was resumed with other overrides at step {changed[0]['from_step']}; "
                "this rerun uses the first attempt's overrides, so its final metrics can differ."
            )
        current = git_state()
        if current != record["git"]:
            console.print(f"[yellow]Note:[/] the run used git state {record['git']}, the code here is at {current}.")
        status = subprocess.run(reproduce_command(record, target), cwd=record["cwd"]).returncode
        if status != 0:
            return status
        reproduced = read_record(target)
        console.print(comparison_table(record["final"]["metrics"], reproduced["final"]["metrics"]))
        console.print(f"original: {options.run_dir}\nreproduced: {target}")
    return 0
