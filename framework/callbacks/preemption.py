"""Saving a checkpoint when the job is asked to stop (SIGTERM from a scheduler or a user)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class CheckpointOnSigterm(pl.Callback):
    """On SIGTERM, save ``last.ckpt`` after the current step; the process then exits with status 0.

    Lightning turns SIGTERM into a ``SIGTERMException`` at the end of the running batch, after
    its optimizer step, so the saved state is consistent. Running the same command again
    resumes from it.

    Args:
        checkpoint_path: where to write, normally ``<run_dir>/checkpoints/last.ckpt``.
    """

    def __init__(self, checkpoint_path: str | Path) -> None:
        self.checkpoint_path = Path(checkpoint_path)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.checkpoint_path)
            log.warning(
                "Received SIGTERM at step %d: saved %s. Run the same command again to resume.",
                trainer.global_step,
                self.checkpoint_path,
            )
