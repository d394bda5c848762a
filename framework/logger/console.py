"""The console side of the run's log (``conf/hydra/job_logging``)."""

from __future__ import annotations

import logging
import sys

# ANSI styles of the levels that must stand out among the INFO lines: bold yellow, bold red.
LEVEL_STYLES = {logging.WARNING: "\033[1;33m", logging.ERROR: "\033[1;31m", logging.CRITICAL: "\033[1;31m"}
RESET = "\033[0m"


class HighlightWarnings(logging.Formatter):
    """A ``logging.Formatter`` that prints warnings in bold yellow and errors in bold red when
    stdout is a terminal (a shortened warmup, changed hyperparameters on resume); elsewhere (a log
    file, SLURM output) lines keep the plain format, whose ``[WARNING]`` field marks them."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        style = LEVEL_STYLES.get(record.levelno)
        return f"{style}{line}{RESET}" if style and sys.stdout.isatty() else line
