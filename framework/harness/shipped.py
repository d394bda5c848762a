"""The harness tasks that ship with the framework, built from held-out text with no download.

Two tasks per text, each from the validation part of the text (the last 10 % of its
characters, as training splits it), drawn with a fixed seed:

- ``<text>_continuation`` (multiple choice, in HellaSwag's style, Zellers et al., 2019): a
  passage cut inside a word (of 4 or more letters, 2 or more letters from either end); the true
  next ``CONTINUATION_CHARACTERS`` characters and 3 distractors, the same number of characters
  after a cut of the same kind at least ``MIN_DISTANCE`` characters away in the same text.
  Choices never hold a line break and have the same length, so choosing by length is no help.
  Chance is 1/4. ``acc`` and ``acc_norm``.
- ``<text>_cloze`` (the last word, in LAMBADA's style, Paperno et al., 2016): a passage ending
  before a word of 3 or more characters that ends a phrase (prose and verse: before one of
  ``,.;:!?`` or at a line's end; code: at a line's end) and also occurs earlier in the passage;
  ``acc`` counts items whose every scored token is the model's most likely one. Chance is the
  unigram baseline: always answering the training part's most frequent word of 3 or more
  characters.

The texts are Tiny Shakespeare and the running Python's standard library (the framework's two
default corpora), so every model is scored on text of its own kind. The same text gives the
same files, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from framework.errors import DataError

ITEMS = 500
SEED = 20231220
CONTEXT_CHARACTERS = 400  # a passage: whole lines, up to this many characters before the cut
CONTINUATION_CHARACTERS = 16  # a character-level model's 64-token context holds one with room to spare
MIN_DISTANCE = 1000  # characters between an item's cut and its distractors'
WORD = r"[A-Za-z_][A-Za-z0-9_]{2,}"  # a cloze answer: a word of prose, or an identifier of code, of 3+ characters
# char-rnn's input.txt, as conf/data/tinyshakespeare.yaml checks it; the texts are cleaned and split
# as conf/data/tinyshakespeare.yaml and conf/data/stdlib.yaml do (a test holds them equal).
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CLEANING = {"shakespeare": ["newlines"], "stdlib": ["newlines", "nfc"]}
VAL_FRACTION = 0.1
SHIPPED_TASKS = ("shakespeare_continuation", "shakespeare_cloze", "stdlib_continuation", "stdlib_cloze")
# The tasks' version, in the build folder's name (beside a hash of this file and of the texts).
VERSION = 1


@dataclass(frozen=True)
class HeldOutText:
    """A text the tasks are built from: ``train`` (for the unigram baseline) and ``val`` (the
    items); ``phrase_ends``: a cloze answer may end a phrase inside a line (prose and verse) or
    only a line (code)."""

    name: str
    train: str
    val: str
    phrase_ends: bool


def _passage_start(text: str, end: int) -> int:
    """The first line start in the ``CONTEXT_CHARACTERS`` before ``end`` (their start when a
    single line fills them)."""
    start = max(0, end - CONTEXT_CHARACTERS)
    newline = text.find("\n", start, end)
    return start if start == 0 or text[start - 1] == "\n" or newline < 0 else newline + 1


def _cuts(text: str, rng: random.Random) -> list[tuple[int, str]]:
    """``(cut, continuation)`` for each word of 4 or more letters: a cut 2 or more letters from
    either end of it, where the ``CONTINUATION_CHARACTERS`` after it hold no line break."""
    cuts = []
    for match in re.finditer(r"(?<![A-Za-z])[A-Za-z]{4,}(?![A-Za-z])", text):
        cut = match.start() + rng.randint(2, len(match.group()) - 2)
        continuation = text[cut : cut + CONTINUATION_CHARACTERS]
        if len(continuation) == CONTINUATION_CHARACTERS and "\n" not in continuation and cut >= CONTEXT_CHARACTERS // 2:
            cuts.append((cut, continuation))
    return cuts


def continuation_items(text: str, count: int = ITEMS, seed: int = SEED) -> list[dict]:
    """Multiple-choice items ``{"context", "choices", "label"}`` from ``text`` (see the module).

    Raises:
        DataError: fewer than ``count`` places to cut.
    """
    rng = random.Random(seed)
    cuts = _cuts(text, rng)
    if len(cuts) < count:
        raise DataError(f"The held-out text has {len(cuts)} places to cut a word; {count} are needed.")
    items = []
    for index in sorted(rng.sample(range(len(cuts)), count)):
        cut, continuation = cuts[index]
        choices = [continuation]
        while len(choices) < 4:
            other_cut, other = cuts[rng.randrange(len(cuts))]
            if abs(other_cut - cut) >= MIN_DISTANCE and other not in choices:
                choices.append(other)
        rng.shuffle(choices)
        items.append({"context": text[_passage_start(text, cut) : cut], "choices": choices, "label": choices.index(continuation)})
    return items


def cloze_items(text: str, phrase_ends: bool, count: int = ITEMS, seed: int = SEED) -> list[dict]:
    """Cloze items ``{"context", "target"}``: ``target`` is a :data:`WORD` after a space that
    ends a line (punctuation after it allowed) or, with ``phrase_ends``, stands before one of
    ``,.;:!?``, and also occurs as a whole word in its passage of up to
    ``CONTEXT_CHARACTERS`` characters (whole lines) ending before it.

    Raises:
        DataError: fewer than ``count`` such words.
    """
    after = r"(?=[^\w\n]*(?:\n|$)|[,.;:!?])" if phrase_ends else r"(?=[^\w\n]*(?:\n|$))"
    candidates = []
    for match in re.finditer(rf"(?<=[ \t])({WORD}){after}", text):
        word, end = match.group(1), match.start(1)
        context = text[_passage_start(text, end) : end]
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", context):
            candidates.append({"context": context, "target": word})
    if len(candidates) < count:
        raise DataError(f"The held-out text has {len(candidates)} phrase-final words seen earlier in their passage; {count} are needed.")
    chosen = sorted(random.Random(seed).sample(range(len(candidates)), count))
    return [candidates[index] for index in chosen]


def unigram_baseline(train: str, items: list[dict]) -> tuple[str, float]:
    """The most frequent :data:`WORD` of ``train`` and the share of ``items`` whose target it is."""
    most_frequent = Counter(re.findall(rf"(?<!\w){WORD}(?!\w)", train)).most_common(1)[0][0]
    return most_frequent, sum(item["target"] == most_frequent for item in items) / len(items)


def _task_yaml(name: str, data_file: Path, multiple_choice: bool) -> str:
    common = (
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data_file))}\n"
        'test_split: test\ndoc_to_text: "{{context}}"\ntarget_delimiter: ""\n'
    )
    if multiple_choice:
        return (
            common + "output_type: multiple_choice\ndoc_to_choice: choices\ndoc_to_target: label\nmetric_list:\n"
            "  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
            "  - {metric: acc_norm, aggregation: mean, higher_is_better: true}\n"
            f"metadata:\n  version: {VERSION}\n"
        )
    return (
        common + 'output_type: loglikelihood\ndoc_to_target: "{{target}}"\nmetric_list:\n'
        "  - {metric: perplexity, aggregation: perplexity, higher_is_better: false}\n"
        "  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
        f"metadata:\n  version: {VERSION}\n"
    )


def _write_jsonl(path: Path, items: list[dict]) -> str:
    """Write ``items`` one JSON object per line; the file's sha256."""
    data = "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in items).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build_tasks(texts: list[HeldOutText], folder: Path, named_folder: Path | None = None) -> dict[str, dict]:
    """Write each text's two tasks into ``folder`` (``<task>.jsonl``, ``<task>.yaml``, the
    harness's task definition reading that file by its absolute path in ``named_folder``,
    default ``folder``) and ``tasks.json``: per task its items, chance level, the data file's
    sha256 and how chance is defined.

    Returns:
        ``tasks.json``'s content: ``{task name: {"items", "chance", "chance_is", "sha256"}}``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for text in texts:
        continuation, cloze = continuation_items(text.val), cloze_items(text.val, text.phrase_ends)
        most_frequent, baseline = unigram_baseline(text.train, cloze)
        for name, items, chance, chance_is in (
            (f"{text.name}_continuation", continuation, 0.25, "one of 4 choices"),
            (f"{text.name}_cloze", cloze, baseline, f"unigram baseline: always {most_frequent!r}"),
        ):
            data_file = folder / f"{name}.jsonl"
            digest = _write_jsonl(data_file, items)
            data_path = (named_folder or folder).resolve() / data_file.name
            (folder / f"{name}.yaml").write_text(_task_yaml(name, data_path, multiple_choice=name.endswith("continuation")))
            manifest[name] = {"items": len(items), "chance": chance, "chance_is": chance_is, "sha256": digest}
    (folder / "tasks.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def held_out_texts(shakespeare: Path) -> list[HeldOutText]:
    """Tiny Shakespeare (read from ``shakespeare``) and the running Python's standard library,
    cleaned and split as ``data=tinyshakespeare`` and ``data=stdlib`` train on them (10 %
    validation)."""
    from framework.data.cleaning import clean
    from framework.data.sources import StdlibSource, read_text_file
    from framework.data.token_cache import CorpusReading, split_boundary

    texts = []
    for name, text, phrase_ends in (
        ("shakespeare", read_text_file(shakespeare, setting="harness.shakespeare"), True),
        ("stdlib", "".join(CorpusReading(StdlibSource().read())), False),
    ):
        text = clean(text, CLEANING[name])
        boundary = split_boundary(len(text), VAL_FRACTION)
        texts.append(HeldOutText(name, text[:boundary], text[boundary:], phrase_ends))
    return texts
