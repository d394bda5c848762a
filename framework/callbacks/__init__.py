"""Lightning callbacks, selected by ``conf/callbacks`` (checkpointing, LR monitor, progress bar)."""

from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
from pytorch_lightning import Callback


def build_callbacks(config: Mapping) -> list[Callback]:
    """Instantiate each callback in ``config``; a key set to null disables that callback."""
    return [hydra.utils.instantiate(node) for node in config.values() if node is not None]
