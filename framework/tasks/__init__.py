"""Training tasks as LightningModules, selected by ``conf/task``."""

from framework.tasks.classification import ClassificationTask
from framework.tasks.language_modeling import LanguageModelingTask

__all__ = ["ClassificationTask", "LanguageModelingTask"]
