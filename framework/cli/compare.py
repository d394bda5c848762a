"""Compare finished runs offline: ``lmf-compare`` or ``python -m framework.compare <sweep dir or run dirs...>``.

Reads each run's ``run.json`` and ``metrics.csv`` (so it works whichever logger was used) and
prints one row per run, best first: the config keys that differ between the runs, then the
final and best values of the metrics and the wall time, in as many columns as the terminal holds
(``--wide``: every metric and the parameter count). ``--csv``/``--markdown`` write the wide
table; ``--plot`` draws training and validation loss (or ``--metric``) against the optimizer
step, one line per run; ``--html`` writes the table and the plot as one self-contained page.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from rich.console import Console
from rich.table import Table

from framework.cli.precheck import user_errors_exit
from framework.cli.usage import epilog
from framework.run.comparison import (
    DEFAULT_PLOT_METRICS,
    comparison_rows,
    find_runs,
    fit_width,
    plot,
    table_width,
    tokenizer_note,
    write_csv,
    write_markdown,
)
from framework.run.comparison_html import write_html


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``lmf-compare`` (its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m framework.compare",
        description=textwrap.fill(
            "Compare finished runs or sweeps offline, from each run's run.json and metrics.csv: one row per run, best "
            "first, with the config keys that differ and the final and best metrics; a plot of training and validation "
            "loss, and one self-contained HTML page with both.",
            width=100,
        ),
        epilog=epilog(
            "compare",
            (
                "python -m framework.compare logs/multiruns/<sweep>",
                "python -m framework.compare logs/runs/a logs/runs/b --plot curves.png --html report.html",
                "python -m framework.compare logs/multiruns/<sweep> --sort val/acc --wide --csv table.csv",
            ),
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, or sweep directories holding runs")
    parser.add_argument("--sort", default="val/loss", help="metric whose final value orders the rows (default val/loss)")
    parser.add_argument("--wide", action="store_true", help="print every column (final and best of each metric, parameters)")
    parser.add_argument("--csv", type=Path, help="also write the wide table as CSV")
    parser.add_argument("--markdown", type=Path, help="also write the wide table as Markdown")
    parser.add_argument("--plot", type=Path, help="write a PNG of the metrics against the optimizer step, one line per run")
    parser.add_argument("--html", type=Path, help="write one self-contained HTML page with the wide table and the plot")
    parser.add_argument(
        "--metric", action="append", help=f"metric to plot, repeatable (default: {' and '.join(DEFAULT_PLOT_METRICS)} side by side)"
    )
    return parser


def main(arguments: list[str] | None = None) -> None:
    """The console script ``lmf-compare``."""
    options = build_parser().parse_args(arguments)
    metrics = options.metric or list(DEFAULT_PLOT_METRICS)
    with user_errors_exit():
        runs = find_runs(options.paths)
        header, rows = comparison_rows(runs, options.sort, wide=True)
        shown_header, shown_rows = (header, rows) if options.wide else comparison_rows(runs, options.sort, wide=False)
    console = Console()
    if options.wide:  # as wide as the table, even when the terminal or a pipe is narrower
        console = Console(width=max(console.width, table_width(header, rows)))
    else:
        shown_header, shown_rows = fit_width(shown_header, shown_rows, console.width)
    title = f"{len(runs)} runs, sorted by final {options.sort}"
    table = Table(title=title)
    for column in shown_header:
        table.add_column(column, overflow="fold")
    for row in shown_rows:
        table.add_row(*row)
    console.print(table)
    if not options.wide and len(shown_header) < len(header):
        console.print(f"{len(header) - len(shown_header)} more columns: --wide, --csv or --html.", highlight=False)
    if note := tokenizer_note(runs, options.sort):
        console.print(note, highlight=False)
    with user_errors_exit():
        if options.csv:
            write_csv(options.csv, header, rows)
        if options.markdown:
            write_markdown(options.markdown, header, rows)
        if options.plot:
            plot(options.plot, runs, metrics)
        if options.html:
            write_html(options.html, title, header, rows, runs, metrics)
    for kind, path in (("plot", options.plot), ("page", options.html)):
        if path:
            console.print(f"Wrote the {kind} {path}", highlight=False)
