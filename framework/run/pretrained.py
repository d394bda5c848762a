"""Starting a run from pretrained weights: ``model.init_from=<run dir | checkpoint | hf:<dir>>``.

The source is read first, before any data (:func:`read_pretrained`); its tokenizer replaces
the one the run would train, its architecture must be the configured model's
(:func:`check_architecture_matches`), and once the model is built the tensors whose names match
are copied in (:func:`load_pretrained`): a GPT's ``transformer.*`` into a GPT or a GPT
classifier, a BERT's ``encoder.*`` into a masked-LM model or a BERT classifier. The new modules
(a classifier's ``head``, or the MLM head of a ``BertModel``) keep their fresh initialisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tokenizers import Tokenizer
from torch import nn

from framework.checkpointing import is_sharded_checkpoint, load_checkpoint_file
from framework.errors import CheckpointMismatchError, ConfigError, MissingInputError
from framework.optim import FineTuning
from framework.run.kinds import prepared_data
from framework.run.loading import checkpoint_path, model_state, single_file
from framework.tokenizer import FILE_TOKENIZER, tokenizer_from_file, tokenizer_hash
from framework.transfer.hf import read_hf_checkpoint

log = logging.getLogger(__name__)
# Modules a model may have that its source lacks: task heads, initialised fresh.
NEW_MODULES = ("head", "mlm")
# Model arguments that differ freely between a source and the model it initialises.
FREE_ARGUMENTS = {"_target_", "vocab_size", "num_outputs", "dropout", "pooling", "compile", "init_from"}


@dataclass
class Pretrained:
    """What ``model.init_from`` names, read.

    Attributes:
        origin: the ``model.init_from`` value (for messages).
        state: tensors under this framework's parameter names.
        tokenizer: the source's tokenizer.
        architecture: the source model's arguments (``conf/model`` names, ``vocab_size`` included).
        tokenizer_config: the source run's ``tokenizer`` node (None for a Hugging Face source).
    """

    origin: str
    state: dict[str, torch.Tensor]
    tokenizer: Tokenizer
    architecture: dict[str, Any]
    tokenizer_config: dict | None


def pretrained_start(cfg: DictConfig, checkpoint: dict | None) -> tuple[Pretrained | None, Tokenizer | None]:
    """What ``model.init_from`` gives a run: the source (:func:`read_pretrained`, with ``cfg``
    fitted to it by :func:`adopt_pretrained`) and its tokenizer. A run resuming from its own
    ``checkpoint`` takes the tokenizer and vocabulary size from that checkpoint instead and
    reads no source (it may have moved since). Without ``model.init_from``: ``(None, None)``.
    """
    if not cfg.model.get("init_from"):
        if FineTuning(**(cfg.get("finetune") or {})).active:
            log.warning("finetune.* is set but model.init_from is null: the whole model starts from fresh weights.")
        return None, None
    if checkpoint is not None:
        if cfg.model.get("vocab_size") is None:
            cfg.model.vocab_size = checkpoint["model_arguments"]["vocab_size"]
        return None, Tokenizer.from_str(checkpoint["tokenizer_json"])
    pretrained = read_pretrained(cfg.model.init_from)
    adopt_pretrained(cfg, pretrained)
    return pretrained, pretrained.tokenizer


def read_pretrained(init_from: str) -> Pretrained:
    """Read a run directory (its best checkpoint, as ``framework.evaluate``), a checkpoint file,
    or ``hf:<dir>`` (a local Hugging Face GPT-2 or BERT directory).

    Raises:
        MissingInputError: no such path, or a run directory without a checkpoint.
        CheckpointMismatchError: a file not written by this framework's training.
        ConfigError: an unsupported Hugging Face architecture.
    """
    if init_from.startswith("hf:"):
        hf = read_hf_checkpoint(init_from[3:])
        return Pretrained(init_from, hf.state, hf.tokenizer, hf.architecture, None)
    path = Path(init_from).expanduser()
    if path.is_dir() and not is_sharded_checkpoint(path):
        if not (path / "checkpoints" / "last.ckpt").exists():
            hint = f" It holds a config.json: did you mean model.init_from=hf:{init_from}?" if (path / "config.json").is_file() else ""
            raise MissingInputError(
                f"model.init_from={init_from} is a directory without checkpoints/last.ckpt; give a finished run's directory, "
                f"a checkpoint file, or hf:<Hugging Face model directory>.{hint}"
            )
        path = checkpoint_path(path, "best")
    elif not path.exists():
        raise MissingInputError(f"model.init_from={init_from} does not exist; give a run directory, a checkpoint file or hf:<dir>.")
    checkpoint = load_checkpoint_file(single_file(path), mmap=False)
    if "run_config" not in checkpoint or "tokenizer_json" not in checkpoint:
        raise CheckpointMismatchError(f"model.init_from={init_from}: {path} was not written by lm-framework's training.")
    config = OmegaConf.create(checkpoint["run_config"])
    architecture = {**OmegaConf.to_container(config.model, resolve=True), **checkpoint.get("model_arguments", {})}
    return Pretrained(
        init_from,
        model_state(checkpoint["state_dict"]),
        Tokenizer.from_str(checkpoint["tokenizer_json"]),
        architecture,
        OmegaConf.to_container(config.tokenizer, resolve=True),
    )


def _normalised(arguments: dict[str, Any]) -> dict[str, Any]:
    values = dict(arguments)
    if "n_inner" in values and values["n_inner"] is None and "n_embd" in values:
        values["n_inner"] = 4 * values["n_embd"]
    return values


def adopt_pretrained(cfg: DictConfig, pretrained: Pretrained) -> None:
    """Fit ``cfg`` to ``pretrained`` before anything is built: ``model.vocab_size: null`` takes
    the source's; every architecture argument the model shares with the source must be equal
    (``n_layer``, ``n_head``, ``n_embd``, ``block_size``, ...), and the tokenizer settings of a
    source run must be this run's (``tokenizer=file``: the file must be the source's tokenizer).

    Raises:
        ConfigError: the differing keys, each with the source's value, in one message.
    """
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if model.get("vocab_size") is None and "vocab_size" in model:
        cfg.model.vocab_size = pretrained.architecture["vocab_size"]
    ours, theirs = _normalised(model), _normalised(pretrained.architecture)
    differing = sorted(key for key in ours.keys() & theirs.keys() if key not in FREE_ARGUMENTS and ours[key] != theirs[key])
    if cfg.model.get("vocab_size") not in (None, pretrained.architecture["vocab_size"]):
        differing.insert(0, "vocab_size")
        ours["vocab_size"] = cfg.model.vocab_size
    if differing:
        raise ConfigError(
            f"model.init_from={pretrained.origin} holds a model that differs from the configured one in "
            + ", ".join(f"model.{key}={ours[key]} (pretrained: {theirs[key]})" for key in differing)
            + ". Set "
            + " ".join(f"model.{key}={_override(theirs[key])}" for key in differing)
            + " (vocab_size: null takes the pretrained one; model.block_size follows data.max_length or data.block_size"
            + " unless set)."
        )
    if cfg.tokenizer.get("_target_") == FILE_TOKENIZER:
        if tokenizer_hash(tokenizer_from_file(path=cfg.tokenizer.path)) != tokenizer_hash(pretrained.tokenizer):
            raise ConfigError(
                f"tokenizer.path={cfg.tokenizer.path} is not the tokenizer of model.init_from={pretrained.origin}; a pretrained "
                "model keeps its tokenizer. Drop the tokenizer override."
            )
    elif pretrained.tokenizer_config is None:
        log.info("model.init_from=%s: the tokenizer is the directory's; the tokenizer settings are not used.", pretrained.origin)
    elif not prepared_data(cfg.data):
        current = OmegaConf.to_container(cfg.tokenizer, resolve=True)
        changed = sorted(
            key for key in current.keys() | pretrained.tokenizer_config.keys() if current.get(key) != pretrained.tokenizer_config.get(key)
        )
        if changed:
            raise ConfigError(
                f"model.init_from={pretrained.origin} fixes the tokenizer (the pretrained run's tokenizer.json), but this run's "
                "tokenizer settings differ in "
                + ", ".join(f"tokenizer.{key}={current.get(key)} (pretrained: {pretrained.tokenizer_config.get(key)})" for key in changed)
                + "; use the pretrained run's tokenizer settings."
            )


def _override(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def load_pretrained(model: nn.Module, pretrained: Pretrained) -> dict[str, list[str]]:
    """Copy the tensors of ``pretrained`` whose names are ``model``'s into it; log what was
    loaded, what is new and what the source had that the model does not use.

    Returns ``{"loaded": [...], "new": [...], "unused": [...]}`` (parameter and buffer names).

    Raises:
        CheckpointMismatchError: a tensor of another shape (a vocabulary or size mismatch), no
            common tensor at all, or a tensor missing outside the new modules (:data:`NEW_MODULES`):
            a source of another architecture. Each names the tensors and prefixes involved.
    """
    target = model.state_dict()
    # a head of another shape (another number of classes) is new, like a missing one
    source = {
        name: value
        for name, value in pretrained.state.items()
        if not (name in target and value.shape != target[name].shape and name.split(".")[0] in NEW_MODULES)
    }
    mismatched = [name for name in target if name in source and source[name].shape != target[name].shape]
    if mismatched:
        shown = "; ".join(f"{name}: pretrained {tuple(source[name].shape)}, model {tuple(target[name].shape)}" for name in mismatched[:6])
        hint = (
            " The vocabularies differ: keep the pretrained tokenizer and model.vocab_size=null."
            if any("wte" in name for name in mismatched)
            else ""
        )
        raise CheckpointMismatchError(f"model.init_from={pretrained.origin} does not fit the model: {shown}.{hint}")
    loaded = [name for name in target if name in source]
    new = [name for name in target if name not in source]
    missing = [name for name in new if name.split(".")[0] not in NEW_MODULES]
    if missing:
        raise CheckpointMismatchError(
            f"model.init_from={pretrained.origin} is a model of another architecture: it holds {_prefixes(source)}, the configured "
            f"model {type(model).__name__} needs {_prefixes(target)}, and {len(missing)} tensor(s) such as {', '.join(missing[:4])} "
            "are not in it."
        )
    unused = [name for name in pretrained.state if name not in target or name not in source]
    model.load_state_dict({name: source[name] for name in loaded}, strict=False)
    log.info(
        "model.init_from=%s: loaded %d tensors (%s parameters: %s); new: %s; not used: %s.",
        pretrained.origin,
        len(loaded),
        f"{sum(target[name].numel() for name in loaded):,}",
        _prefixes({name: None for name in loaded}),
        ", ".join(new) or "none",
        _prefixes({name: None for name in unused}) if unused else "none",
    )
    return {"loaded": loaded, "new": new, "unused": unused}


def _prefixes(names: dict) -> str:
    """``transformer.*, lm_head.*``: the first components of ``names``, in order."""
    return ", ".join(f"{prefix}.*" for prefix in dict.fromkeys(name.split(".")[0] for name in names))
