"""The datasets' tokenizer, as a one-task stage: trained on the first ``tokenizer.sample_bytes``
of the training split's cleaned, deduplicated text (taken in turn from each source), or read
from ``tokenizer.path``; the end-of-text token is added when it lacks one."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import hydra.utils
from datatrove.pipeline.base import PipelineStep
from tokenizers import Tokenizer

from framework.errors import ConfigError
from framework.prepare.steps import validation_document
from framework.tokenizer import tokenizer_hash

OUR_KEYS = ("sample_bytes", "path", "sha256")


def checked_tokenizer_settings(config: dict) -> dict:
    """``config`` (the ``tokenizer`` node) checked, with ``path`` made absolute and, for a given
    tokenizer, its ``sha256`` added, so that a changed file makes a new dataset.

    Raises:
        ConfigError: ``tokenizer.sample_bytes`` below 1, or a ``tokenizer.path`` that is not a
            tokenizer file.
    """
    if config["sample_bytes"] < 1:
        raise ConfigError(f"tokenizer.sample_bytes={config['sample_bytes']} must be at least 1.")
    if not config.get("path"):
        return config
    path = Path(config["path"]).expanduser().resolve()
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for a missing or bad file
        raise ConfigError(f"tokenizer.path={config['path']} is not a tokenizer.json file ({error}).") from None
    return {**config, "path": str(path), "sha256": tokenizer_hash(tokenizer)}


def _training_texts(documents: Path, val_fraction: float) -> Iterator[str]:
    """The texts of the training split's documents in ``documents`` (datatrove's JSONL output), files in name order."""
    for path in sorted(documents.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as file:
            for line in file:
                text = json.loads(line)["text"]
                if not validation_document(text, val_fraction):
                    yield text


def training_sample(documents: list[Path], val_fraction: float, sample_bytes: int) -> Iterator[str]:
    """Training-split texts taken in turn from each folder of ``documents`` (one per source),
    separated by blank lines, until ``sample_bytes`` UTF-8 bytes: each source is represented
    even when the first one alone would fill the sample."""
    remaining = sample_bytes
    streams = [_training_texts(folder, val_fraction) for folder in documents]
    while streams and remaining > 0:
        for stream in list(streams):
            text = next(stream, None)
            if text is None:
                streams.remove(stream)
                continue
            yield text + "\n\n"
            remaining -= len(text.encode()) + 2
            if remaining <= 0:
                return


class TrainTokenizer(PipelineStep):
    """Writes ``<output>/tokenizer.json`` and ``<output>/tokenizer_info.json`` (sha256,
    vocab_size, eos_id, sample_bytes, path): the tokenizer of ``config`` (the ``tokenizer``
    node from :func:`checked_tokenizer_settings`: a training function's config, plus
    ``sample_bytes``, and ``path`` for a given tokenizer, whose training settings are then unused).
    """

    name = "train tokenizer"
    type = "🔢 - TOKENIZER"

    def __init__(self, config: dict, eos_token: str, documents: list[str], val_fraction: float, output: str) -> None:
        super().__init__()
        self.config, self.eos_token, self.documents = config, eos_token, [Path(folder) for folder in documents]
        self.val_fraction, self.output = val_fraction, Path(output)

    def build(self) -> Tokenizer:
        if self.config.get("path"):
            return Tokenizer.from_file(self.config["path"])
        trainer = hydra.utils.instantiate({key: value for key, value in self.config.items() if key not in OUR_KEYS})
        return trainer(training_sample(self.documents, self.val_fraction, self.config["sample_bytes"]))

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        tokenizer = self.build()
        if tokenizer.token_to_id(self.eos_token) is None:
            tokenizer.add_special_tokens([self.eos_token])
        self.output.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(self.output / "tokenizer.json"))
        info = {
            "sha256": tokenizer_hash(tokenizer),
            "vocab_size": tokenizer.get_vocab_size(),
            "eos_id": tokenizer.token_to_id(self.eos_token),
            "sample_bytes": None if self.config.get("path") else self.config["sample_bytes"],
            "path": self.config.get("path"),
        }
        (self.output / "tokenizer_info.json").write_text(json.dumps(info, indent=2) + "\n")
        self.stat_update("vocab_size", value=info["vocab_size"])
        return iter(())
