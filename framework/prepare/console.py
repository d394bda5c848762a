"""datatrove's console output during a preparation: warnings and errors only."""

from __future__ import annotations

import sys


def console_warnings_only() -> None:
    """Show datatrove's (loguru's) messages of level WARNING and above on stderr in this process.

    Its INFO lines (pipeline banners, per-task stats, "k/n tasks completed") repeat what the
    preparation's progress lines and report say; every task's full log stays in its stage's
    ``logs/logs/task_<rank>.log`` (the dataset's ``stages/`` or the cache, as the report says).
    """
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
