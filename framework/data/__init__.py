"""The data pipeline, selected by ``conf/data``: source -> cleaning -> split -> token cache -> windows.

The names below load their module on first use (PEP 562), so that importing one light module
of the package (``framework.data.cleaning`` in a corpus-preparation worker) does not import
PyTorch Lightning.
"""

import importlib

_MODULES = {
    "ClassificationDataModule": "classification_datamodule",
    "EncodedSplit": "classification_datamodule",
    "LanguageModelingDataModule": "datamodule",
    "check_split_length": "datamodule",
    "LabelledTextFiles": "labelled",
    "Document": "sources",
    "StdlibSource": "sources",
    "TextDocument": "sources",
    "TextFileDocument": "sources",
    "TextFilesSource": "sources",
    "TextLines": "lines",
    "TinyShakespeareSource": "sources",
    "TokenizedCorpus": "token_cache",
    "prepare_corpus": "token_cache",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module 'framework.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"framework.data.{_MODULES[name]}"), name)
