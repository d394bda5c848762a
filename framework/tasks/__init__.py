"""LightningModules that pair a model with a loss, metrics and an optimizer (``conf/task``)."""

from framework.tasks.language_modeling import LanguageModelingTask

__all__ = ["LanguageModelingTask"]
