"""datatrove's console output during a preparation: warnings and errors only."""

from __future__ import annotations

import sys


def console_warnings_only() -> None:
    """Show datatrove's (loguru's) messages of level WARNING and above on stderr in this process.

    Its INFO lines (pipeline banners, per-task stats, "k/n tasks completed") repeat what the
    preparation's progress lines and report say. The tasks themselves print only errors
    (``QuietLocalPipelineExecutor``); each task's full log is in its stage's
    ``logs/logs/task_<rank>.log``, and the line of a finished stage counts its warnings.
    """
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
