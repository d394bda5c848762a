"""Compare finished runs offline: ``lmf-compare`` or ``python -m framework.compare <sweep dir or run dirs...>``.

Reads each run's ``run.json`` and ``metrics.csv`` (so it works whichever logger was used) and
prints one row per run: the config keys that differ between the runs, then the final and best
values of the metrics, the parameter count and the wall time. ``--csv``/``--markdown`` write
the table; ``--plot`` draws chosen metrics against the optimizer step, one line per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from framework.cli.precheck import user_errors_exit
from framework.run.comparison import comparison_rows, find_runs, plot, write_csv, write_markdown


def main(arguments: list[str] | None = None) -> None:
    """The console script ``lmf-compare``."""
    parser = argparse.ArgumentParser(prog="lmf-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, or sweep directories holding runs")
    parser.add_argument("--sort", default="val/loss", help="metric whose final value orders the rows (default val/loss)")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    parser.add_argument("--plot", type=Path, help="write a PNG of --metric against step, one line per run")
    parser.add_argument("--metric", action="append", help="metric(s) to plot (default val/loss); repeatable")
    options = parser.parse_args(arguments)
    with user_errors_exit():
        runs = find_runs(options.paths)
        header, rows = comparison_rows(runs, options.sort)
    table = Table(title=f"{len(runs)} runs, sorted by final {options.sort}")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if options.csv:
        write_csv(options.csv, header, rows)
    if options.markdown:
        write_markdown(options.markdown, header, rows)
    if options.plot:
        with user_errors_exit():
            plot(options.plot, runs, options.metric or ["val/loss"])
