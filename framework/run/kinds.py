"""What a composed config describes: the kind of task and model (these import the class the
config names), and the kind of data node (read from the config alone). A module without torch
or Lightning imports, so that commands that never train (``framework.prepare``) can use it."""

from __future__ import annotations

import hydra.utils
from omegaconf import DictConfig


def task_kind(cfg: DictConfig) -> str:
    """The kind of task ``cfg`` trains: ``KIND`` of the ``cfg.task`` class."""
    return hydra.utils.get_class(cfg.task._target_).KIND


def model_kind(cfg: DictConfig) -> str:
    """The kind of task the ``cfg.model`` class serves: its ``TASK_KIND``."""
    return hydra.utils.get_class(cfg.model._target_).TASK_KIND


def labelled_data(data: DictConfig) -> bool:
    """Whether a ``conf/data`` node describes labelled files (it builds a ``LabelledTextFiles``)
    rather than a text corpus."""
    return "_target_" in data


def prepared_data(data: DictConfig) -> bool:
    """Whether a ``conf/data`` node names a dataset made by ``framework.prepare`` (``data=prepared``:
    a ``path`` and no ``source`` to read) rather than text to read, clean and tokenize."""
    return not labelled_data(data) and "source" not in data
