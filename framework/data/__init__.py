"""The data pipeline, selected by ``conf/data``: source -> cleaning -> split -> token cache -> windows."""

from framework.data.classification_datamodule import ClassificationDataModule, EncodedSplit
from framework.data.datamodule import LanguageModelingDataModule, check_split_length
from framework.data.labelled import LabelledTextFiles
from framework.data.sources import Document, StdlibSource, TextDocument, TextFileDocument, TextFilesSource, TinyShakespeareSource
from framework.data.token_cache import TokenizedCorpus, prepare_corpus

__all__ = [
    "ClassificationDataModule",
    "Document",
    "EncodedSplit",
    "LabelledTextFiles",
    "LanguageModelingDataModule",
    "StdlibSource",
    "TextDocument",
    "TextFileDocument",
    "TextFilesSource",
    "TinyShakespeareSource",
    "TokenizedCorpus",
    "check_split_length",
    "prepare_corpus",
]
