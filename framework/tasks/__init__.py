"""Training tasks as LightningModules, selected by ``conf/task``."""

from framework.tasks.classification import ClassificationTask
from framework.tasks.language_modeling import LanguageModelingTask
from framework.tasks.masked_language_modeling import MaskedLanguageModelingTask

# Every metric the tasks log, and whether lower ("min") or higher ("max") is better.
METRIC_DIRECTIONS = {**LanguageModelingTask.METRICS, **ClassificationTask.METRICS, **MaskedLanguageModelingTask.METRICS}

__all__ = ["METRIC_DIRECTIONS", "ClassificationTask", "LanguageModelingTask", "MaskedLanguageModelingTask"]
