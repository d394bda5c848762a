"""datatrove's local executor with quiet tasks."""

from __future__ import annotations

from datatrove.executor import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats

from framework.prepare.console import console_warnings_only


class QuietLocalPipelineExecutor(LocalPipelineExecutor):
    """``LocalPipelineExecutor`` whose tasks print only errors on the console, as datatrove does for
    every worker but the first (a non-zero ``local_rank``, which datatrove uses for logging only);
    each task's full DEBUG log is written to its stage's ``logs/logs/task_<rank>.log``."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        try:
            return super()._run_for_rank(rank, local_rank=1, node_rank=node_rank)
        finally:  # datatrove ends a task by restoring its default console handler, at DEBUG
            console_warnings_only()
