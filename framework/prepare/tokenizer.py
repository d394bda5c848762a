"""The dataset's tokenizer: trained on the first ``tokenizer.sample_bytes`` of the training
split's cleaned, deduplicated text, or read from ``tokenizer.path``; the end-of-text token is
added when it lacks one."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import hydra.utils
from omegaconf import DictConfig, OmegaConf
from tokenizers import Tokenizer

from framework.errors import ConfigError
from framework.prepare.stages import settings_hash
from framework.prepare.steps import validation_document
from framework.tokenizer import tokenizer_hash

OUR_KEYS = ("sample_bytes", "path")


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


def prepared_tokenizer(config: DictConfig, eos_token: str, documents: list[Path], val_fraction: float, cache: Path) -> tuple[Path, dict]:
    """Train (or load) the tokenizer, with ``eos_token`` as a special token, saved under ``cache``.

    Returns:
        The ``tokenizer.json`` path and what the manifest records: its sha256, vocabulary size,
        end-of-text id and the training sample's size in bytes.

    Raises:
        ConfigError: ``tokenizer.sample_bytes`` below 1, or ``tokenizer.path`` not a tokenizer file.
    """
    if config.sample_bytes < 1:
        raise ConfigError(f"tokenizer.sample_bytes={config.sample_bytes} must be at least 1.")
    if config.path:
        try:
            tokenizer = Tokenizer.from_file(str(Path(config.path).expanduser()))
        except Exception as error:  # tokenizers raises a bare Exception for a bad file
            raise ConfigError(f"tokenizer.path={config.path} is not a tokenizer.json file ({error}).") from None
        if tokenizer.token_to_id(eos_token) is None:
            tokenizer.add_special_tokens([eos_token])
    else:
        settings = {
            "documents": [str(folder) for folder in documents],
            "config": OmegaConf.to_container(config),
            "val_fraction": val_fraction,
            "eos": eos_token,
        }
        saved = cache / f"tokenizer-{settings_hash(settings)[:12]}" / "tokenizer.json"
        if saved.is_file():
            tokenizer = Tokenizer.from_file(str(saved))
        else:
            trainer = hydra.utils.instantiate({key: value for key, value in OmegaConf.to_container(config).items() if key not in OUR_KEYS})
            tokenizer = trainer(training_sample(documents, val_fraction, config.sample_bytes))
            if tokenizer.token_to_id(eos_token) is None:
                tokenizer.add_special_tokens([eos_token])
            saved.parent.mkdir(parents=True, exist_ok=True)
            tokenizer.save(str(saved))
    folder = cache / f"tokenizer-{tokenizer_hash(tokenizer)[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json", {
        "sha256": tokenizer_hash(tokenizer),
        "vocab_size": tokenizer.get_vocab_size(),
        "eos_id": tokenizer.token_to_id(eos_token),
        "sample_bytes": None if config.path else config.sample_bytes,
        "path": config.path,
    }
