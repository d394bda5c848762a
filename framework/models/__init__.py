"""Model architectures as plain ``nn.Module``s (no Lightning), selected by ``conf/model``."""

from framework.models.bert import BertClassifier, BertMaskedLM
from framework.models.classifiers import GPTClassifier, LSTMClassifier, TransformerClassifier
from framework.models.gpt import GPT, GPTConfig
from framework.models.lstm import LSTMLanguageModel
from framework.models.sampling import generate

__all__ = [
    "BertClassifier",
    "BertMaskedLM",
    "GPT",
    "GPTClassifier",
    "GPTConfig",
    "LSTMClassifier",
    "LSTMLanguageModel",
    "TransformerClassifier",
    "generate",
]
