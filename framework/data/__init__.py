"""The data pipeline, selected by ``conf/data``: source -> cleaning -> split -> token cache -> windows."""

from framework.data.datamodule import LanguageModelingDataModule, check_split_length
from framework.data.sources import Document, StdlibSource, TextFilesSource, TinyShakespeareSource
from framework.data.token_cache import TokenizedCorpus, prepare_corpus

__all__ = [
    "Document",
    "LanguageModelingDataModule",
    "StdlibSource",
    "TextFilesSource",
    "TinyShakespeareSource",
    "TokenizedCorpus",
    "check_split_length",
    "prepare_corpus",
]
