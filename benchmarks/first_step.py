"""A callback that records when the first optimizer step ends, for ``benchmarks/startup.py``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytorch_lightning as pl


class FirstStepTime(pl.Callback):
    """Write ``time.time()`` at the end of the first training batch to ``$FIRST_STEP_FILE``."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        path = Path(os.environ["FIRST_STEP_FILE"])
        if not path.exists():
            path.write_text(repr(time.time()))
