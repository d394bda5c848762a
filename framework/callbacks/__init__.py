"""Lightning callbacks: the configurable ones (``conf/callbacks``) and the framework's own.

The framework's own callbacks make runs resumable and their checkpoints self-describing;
``framework.run.training.build_trainer`` always adds them.
"""

from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
from pytorch_lightning import Callback

from framework.callbacks.downstream import DownstreamEvaluation
from framework.callbacks.final_validation import ValidateAtLastStep
from framework.callbacks.learning_rate import StepLearningRateMonitor
from framework.callbacks.model_summary import ParameterSummary
from framework.callbacks.nonfinite import NonFiniteLossGuard
from framework.callbacks.preemption import CheckpointOnSigterm
from framework.callbacks.progress_bar import StepProgressBar
from framework.callbacks.progress_log import ProgressLog, step_progress
from framework.callbacks.rng_state import SeedEachBatch
from framework.callbacks.run_metadata import RunMetadataInCheckpoint
from framework.callbacks.step_axis import LogAtGlobalStep
from framework.callbacks.throughput import ThroughputLogger

__all__ = [
    "CheckpointOnSigterm",
    "DownstreamEvaluation",
    "LogAtGlobalStep",
    "NonFiniteLossGuard",
    "ParameterSummary",
    "ProgressLog",
    "StepLearningRateMonitor",
    "RunMetadataInCheckpoint",
    "SeedEachBatch",
    "StepProgressBar",
    "ThroughputLogger",
    "ValidateAtLastStep",
    "build_callbacks",
    "step_progress",
]


def build_callbacks(config: Mapping, metric_directions: Mapping[str, str]) -> list[Callback]:
    """Instantiate each callback in ``config``; a key set to null disables that callback.

    A callback with ``monitor`` and ``mode: null`` (the default ModelCheckpoint) gets the
    monitored metric's direction from ``metric_directions`` (the task's ``METRICS``): ``min``
    for losses, ``max`` for accuracy.
    """
    callbacks = []
    for node in config.values():
        if node is None:
            continue
        if "mode" in node and node.mode is None and node.get("monitor") in metric_directions:
            callbacks.append(hydra.utils.instantiate(node, mode=metric_directions[node.monitor]))
        else:
            callbacks.append(hydra.utils.instantiate(node))
    return callbacks
