"""What a checkpoint needs to be understood on its own: the run's config and tokenizer."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class RunMetadataInCheckpoint(pl.Callback):
    """Add ``run_config`` (the resolved config), ``tokenizer_sha256`` and ``tokenizer_json`` to checkpoints.

    A resumed run compares them with its own config and tokenizer; evaluation and generation
    rebuild the model and tokenizer from them.
    """

    def __init__(self, run_config: dict[str, Any], tokenizer_json: str, tokenizer_sha256: str) -> None:
        self.metadata = dict(run_config=run_config, tokenizer_json=tokenizer_json, tokenizer_sha256=tokenizer_sha256)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint.update(self.metadata)
