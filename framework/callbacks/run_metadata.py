"""What a checkpoint needs to be understood on its own: the run's config and tokenizer."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class RunMetadataInCheckpoint(pl.Callback):
    """Add ``run_config`` (the resolved config), ``tokenizer_sha256``, ``tokenizer_json`` and the
    recipe's metadata (``model_arguments``, classifiers' ``label_names``) to checkpoints.

    A resumed run compares them with its own config and tokenizer; evaluation, generation,
    prediction and export rebuild the model and tokenizer from them (``framework.run.loading``).
    """

    def __init__(self, run_config: dict[str, Any], tokenizer_json: str, tokenizer_sha256: str, **recipe_metadata: Any) -> None:
        self.metadata = dict(run_config=run_config, tokenizer_json=tokenizer_json, tokenizer_sha256=tokenizer_sha256, **recipe_metadata)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint.update(self.metadata)
