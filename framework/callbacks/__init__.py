"""Lightning callbacks: the configurable ones (``conf/callbacks``) and the framework's own.

The framework's own callbacks make runs resumable and their checkpoints self-describing;
they are always added by ``framework.training.build_trainer``.
"""

from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
from pytorch_lightning import Callback

from framework.callbacks.final_validation import ValidateAtLastStep
from framework.callbacks.preemption import CheckpointOnSigterm
from framework.callbacks.progress_bar import StepProgressBar
from framework.callbacks.rng_state import SeedEachBatch
from framework.callbacks.run_metadata import RunMetadataInCheckpoint

__all__ = [
    "CheckpointOnSigterm",
    "RunMetadataInCheckpoint",
    "SeedEachBatch",
    "StepProgressBar",
    "ValidateAtLastStep",
    "build_callbacks",
]


def build_callbacks(config: Mapping) -> list[Callback]:
    """Instantiate each callback in ``config``; a key set to null disables that callback."""
    return [hydra.utils.instantiate(node) for node in config.values() if node is not None]
