"""The run's config as it is stored: paths made absolute, and the portable form checkpoints keep.

Relative paths on the command line mean the directory the command was started in (Hydra's
``runtime.cwd``), also under ``hydra.job.chdir=true``; :func:`make_paths_absolute` writes them
so, once, before anything reads them, so ``run.json``, the checkpoints and every later command
(evaluate, generate, reproduce) find the files from any directory.

A checkpoint keeps the config in its portable form (:func:`portable_config`): values that depend
on the process (``${hydra:...}``, ``${oc.env:...}``, ``${now:...}``) resolved, references between
keys (``${data.path}``) kept, so an override given to a later command (``data.path=other.txt``)
reaches every key that follows it, as it would have in training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# Keys whose values are file-system paths a user may give relative to the working directory.
PATH_KEYS = (
    "data.path",
    "data.source.path",
    "data.source.directory",
    "data.source.cache_dir",
    "paths.root_dir",
    "paths.log_dir",
    "paths.run_dir",
    "paths.cache_dir",
    "logger.wandb.save_dir",
    "callbacks.model_checkpoint.dirpath",
    "callbacks.downstream.tokenizer",
    "callbacks.downstream.shakespeare",
    "callbacks.downstream.include_path",
    "callbacks.downstream.cache_dir",
    "trainer.default_root_dir",
    "tokenizer.path",
)
# A Hugging Face directory given to model.init_from carries this prefix before its path.
HF_PREFIX = "hf:"
_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")


def start_directory() -> Path:
    """The directory the command was started in: Hydra's ``runtime.cwd`` in a Hydra job (the
    working directory may have changed since), else the working directory."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.cwd) if HydraConfig.initialized() else Path.cwd()


def absolute(value: str, start: Path) -> str:
    """``value`` (a path or glob, ``~`` allowed) as an absolute path against ``start``."""
    return os.path.normpath(start / Path(value).expanduser())


def make_paths_absolute(cfg: DictConfig, start: Path | None = None) -> None:
    """Rewrite the :data:`PATH_KEYS`, the paths of ``data.mixture``, a ``resume=<run_dir>`` and
    ``model.init_from`` (keeping its ``hf:``) of ``cfg`` as absolute paths against ``start``
    (default :func:`start_directory`); keys that reference them follow."""
    start = start or start_directory()
    for key in PATH_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            OmegaConf.update(cfg, key, absolute(value, start), merge=False)
    for entry in OmegaConf.select(cfg, "data.mixture", default=None) or []:  # data=prepared's datasets
        if isinstance(entry, DictConfig) and isinstance(entry.get("path"), str) and not os.path.isabs(os.path.expanduser(entry.path)):
            entry.path = absolute(entry.path, start)
    if cfg.get("resume") not in (None, "auto", "never"):
        cfg.resume = absolute(cfg.resume, start)
    init_from = OmegaConf.select(cfg, "model.init_from", default=None)
    if isinstance(init_from, str) and init_from:  # a run directory, a checkpoint, or hf:<dir>
        prefix = HF_PREFIX if init_from.startswith(HF_PREFIX) else ""
        cfg.model.init_from = prefix + absolute(init_from[len(prefix) :], start)


def portable_config(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` as plain containers with every resolver call resolved and every reference kept."""

    def convert(node: Any) -> Any:
        if isinstance(node, DictConfig):
            return {key: value_or_reference(node, key) for key in node.keys()}
        if isinstance(node, ListConfig):
            return [value_or_reference(node, index) for index in range(len(node))]
        return node

    def value_or_reference(parent: DictConfig | ListConfig, key: Any) -> Any:
        raw = parent._get_node(key)._value()
        if isinstance(raw, str) and "${" in raw and not _RESOLVER_CALL.search(raw):
            return raw
        return convert(parent[key])

    return convert(cfg)
