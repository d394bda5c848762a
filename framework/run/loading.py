"""A finished run, loaded for evaluation, generation, prediction and export.

Everything comes from the run directory: the checkpoint holds the config in its portable form
(``run_config``, see ``framework.run.stored_config``), the tokenizer, the model arguments the data decided (``model_arguments``)
and, for classifiers, the class names. Checkpoints load on CPU whichever device wrote them;
parameter names saved from a ``torch.compile``-d model (``_orig_mod.``) are mapped back.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tokenizers import Tokenizer

from framework.checkpointing import consolidate, is_sharded_checkpoint, load_checkpoint_file, read_checkpoint_summary
from framework.checkpointing.sharded import METADATA_FILE, consolidated_path
from framework.data.labelled import pad_id
from framework.errors import CheckpointMismatchError, MissingInputError, UnreadableInputError
from framework.run.kinds import task_kind
from framework.run.recipes import RECIPES, instantiate_model
from framework.tasks.base import TrainingTask

log = logging.getLogger(__name__)
COMPILED_PREFIX = "_orig_mod."


@dataclass
class LoadedRun:
    """A run's model in eval mode on CPU, with what is needed to feed it.

    Attributes:
        run_dir: the run directory.
        checkpoint: the single-file checkpoint the weights came from.
        step: its global step (optimizer steps).
        config: the run's config in its portable form (references between keys kept).
        tokenizer: the run's tokenizer.
        task: the LightningModule (``task.model`` is the ``nn.Module``).
        metadata: the checkpoint's non-tensor entries (``tokenizer_json``, ``label_names``, ...).
    """

    run_dir: Path
    checkpoint: Path
    step: int
    config: DictConfig
    tokenizer: Tokenizer
    task: TrainingTask
    metadata: dict[str, Any]

    @property
    def label_names(self) -> list[str] | None:
        return self.metadata.get("label_names")

    @property
    def pad_id(self) -> int:
        """The id its classification examples were padded with (``framework.data.labelled.pad_id``)."""
        return pad_id(self.tokenizer, pretrained=bool(self.config.model.get("init_from")))

    @property
    def kind(self) -> str:
        """The run's task kind (``TrainingTask.KIND``): ``language_modeling`` or ``classification``."""
        return self.task.KIND


def checkpoint_path(run_dir: Path, which: str) -> Path:
    """``best`` (see :func:`best_checkpoint`), ``last``, or a checkpoint path.

    Raises:
        MissingInputError: the run directory or the checkpoint does not exist.
    """
    if not run_dir.is_dir():
        raise MissingInputError(f"run_dir={run_dir} is not a directory; give a run directory such as logs/runs/<run>.")
    directory = run_dir / "checkpoints"
    if which == "last":
        path = directory / "last.ckpt"
    elif which == "best":
        path = best_checkpoint(directory)
    else:
        path = Path(which)
    if not path.exists():
        raise MissingInputError(f"checkpoint={which}: {path} does not exist; use best, last or a checkpoint file of {run_dir}.")
    return path


def best_checkpoint(directory: Path) -> Path:
    """The best checkpoint ModelCheckpoint recorded in ``last.ckpt`` (looked up by name in
    ``directory`` when the run directory has moved); ``last.ckpt`` without one."""
    last = directory / "last.ckpt"
    if not last.exists():
        return last
    for state in read_checkpoint_summary(last).get("callbacks", {}).values():
        best = state.get("best_model_path") if isinstance(state, dict) else None
        if best and (directory / Path(best).name).exists():
            return directory / Path(best).name
    return last


def single_file(path: Path) -> Path:
    """``path`` itself, or for a sharded (FSDP) checkpoint ``<name>-consolidated.ckpt`` beside
    it, made when missing or older than the shards (a resumed run rewrote them)."""
    if not is_sharded_checkpoint(path):
        return path
    output = consolidated_path(path)
    if output.exists() and output.stat().st_mtime >= (path / METADATA_FILE).stat().st_mtime:
        return output
    log.info("Consolidating the sharded checkpoint %s into %s", path, output)
    fresh = output.with_name(f".{output.name}.{os.getpid()}.fresh")  # concurrent commands do not collide
    try:
        consolidate(path, fresh)
        os.replace(fresh, output)
    except OSError as error:
        fresh.unlink(missing_ok=True)
        raise UnreadableInputError(
            f"Cannot write {output} to consolidate the sharded checkpoint {path} ({error.strerror}). Run "
            f"python -m framework.consolidate {path} --output <writable file> and pass checkpoint=<that file>."
        ) from None
    return output


def model_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The ``model.`` entries of a task's state dict, without that prefix or ``_orig_mod.``."""
    return {name[len("model.") :].replace(COMPILED_PREFIX, ""): value for name, value in state_dict.items() if name.startswith("model.")}


def load_run(run_dir: str | Path, which: str = "best") -> LoadedRun:
    """Load ``run_dir``'s checkpoint ``which`` (see :func:`checkpoint_path`) on CPU.

    Raises:
        MissingInputError: no such run directory or checkpoint.
        CheckpointMismatchError: the file lacks the run metadata this framework writes.
    """
    run_dir = Path(run_dir).expanduser()
    path = single_file(checkpoint_path(run_dir, which))
    checkpoint = load_checkpoint_file(path, mmap=False)
    missing = [key for key in ("run_config", "tokenizer_json", "state_dict") if key not in checkpoint]
    if missing:
        raise CheckpointMismatchError(f"{path} lacks {', '.join(missing)}: it was not written by lm-framework's training.")
    config = OmegaConf.create(checkpoint["run_config"])
    config.task.pop("on_nonfinite_loss", None)  # a task argument of older checkpoints, now callbacks.nonfinite_loss.policy
    tokenizer = Tokenizer.from_str(checkpoint["tokenizer_json"])
    arguments = checkpoint.get("model_arguments") or {"vocab_size": config.model.vocab_size or tokenizer.get_vocab_size()}
    model = instantiate_model(config, **arguments)
    model.load_state_dict(model_state(checkpoint["state_dict"]))
    task = RECIPES[task_kind(config)].task_for(config, model, tokenizer, checkpoint)
    task.checkpoint_step = checkpoint["global_step"]
    task.compile_model = False  # evaluation commands run a few batches: compiling would cost more than it saves
    task.eval()
    metadata = {key: value for key, value in checkpoint.items() if key not in ("state_dict", "optimizer_states")}
    return LoadedRun(run_dir, path, checkpoint["global_step"], config, tokenizer, task, metadata)
