"""Text cleaning steps, applied in the order ``data.cleaning`` lists them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence

from framework.errors import ConfigError

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def normalize_newlines(text: str) -> str:
    """Turn Windows (CRLF) and old Mac (CR) line ends into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_control_chars(text: str) -> str:
    """Remove C0/C1 control characters except tab and newline (and CR, see ``newlines``)."""
    return _CONTROL_CHARS.sub("", text)


CLEANING_STEPS: dict[str, Callable[[str], str]] = {
    "newlines": normalize_newlines,
    "nfc": lambda text: unicodedata.normalize("NFC", text),
    "nfkc": lambda text: unicodedata.normalize("NFKC", text),
    "strip_control": strip_control_chars,
}


def validate_cleaning(steps: Sequence[str], setting: str = "data.cleaning") -> None:
    """Raise ConfigError naming any step in ``steps`` (the value of ``setting``) that is not in :data:`CLEANING_STEPS`."""
    unknown = [step for step in steps if step not in CLEANING_STEPS]
    if unknown:
        raise ConfigError(f"Unknown {setting} step(s) {unknown}; valid steps are {sorted(CLEANING_STEPS)}.")


def clean(text: str, steps: Sequence[str]) -> str:
    """Apply the named cleaning ``steps`` to ``text`` in order.

    Raises:
        ConfigError: a step name that is not in :data:`CLEANING_STEPS`.
    """
    validate_cleaning(steps)
    for step in steps:
        text = CLEANING_STEPS[step](text)
    return text


def _line_end_cut(text: str, start: int = 0) -> int:
    """Just after the last line end in ``text[start:]`` whose cleaning does not depend on what
    follows: a LF, or a CR followed by a character that is neither a LF nor a control character
    (``strip_control`` could remove that one and make the CR half of a CRLF pair); 0 if none."""
    lf = text.rfind("\n", start)
    end = len(text) - 1
    while (cr := text.rfind("\r", max(lf + 1, start), end)) != -1:
        if not _CONTROL_CHARS.match(text, cr + 1):
            return cr + 1
        end = cr
    return lf + 1


def clean_blocks(blocks: Iterable[str], steps: Sequence[str]) -> Iterator[str]:
    """:func:`clean` applied to the concatenation of ``blocks``, a piece at a time.

    Pieces end just after a line end (LF, CRLF, or a lone CR followed by an ordinary character):
    every step acts on its own there (a CRLF pair is never split, nor one that removing control
    characters would form, and no character composes with or reorders across U+000A or U+000D
    under NFC or NFKC), so the pieces joined equal ``clean("".join(blocks), steps)``.
    Memory is bounded by the longest line plus a block, not by the text.

    Raises:
        ConfigError: a step name that is not in :data:`CLEANING_STEPS`.
    """
    validate_cleaning(steps)
    pending = ""
    for block in blocks:
        # No cut before pending's last character, whose next character was not known yet.
        searched = max(len(pending) - 1, 0)
        pending += block
        if cut := _line_end_cut(pending, searched):
            yield clean(pending[:cut], steps)
            pending = pending[cut:]
    if pending:
        yield clean(pending, steps)
