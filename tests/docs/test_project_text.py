"""The project's text speaks of the project as it is: no development history in the documentation
(README.md, docs/**/*.md, mkdocs.yml) or in the comments and docstrings of the code, configs,
tests and build files; and every relative link of README.md reaches a file."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path
from urllib.parse import unquote

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Phrases that tell the history of the code instead of what it is, matched case-insensitively as
# whole words; a space matches any run of white space (a phrase may wrap onto the next line).
HISTORY_PHRASES = [
    r"this issue",
    r"issue #?\d+",
    r"sessions?",
    r"commit [0-9a-f]{7,}",
    r"(?:earlier|previous|older|latest) (?:versions?|sessions?|commits?|runs? of this)",
    r"no longer",
    r"used to",
    r"before (?:the|this) change",
    r"until now",
    r"as of this version",
    r"what changed",
    r"previously",
    r"formerly",
]
HISTORY = re.compile(r"\b(?:" + "|".join(phrase.replace(" ", r"\s+") for phrase in HISTORY_PHRASES) + r")\b", re.IGNORECASE)

WHOLE_TEXT = ["README.md", "docs/**/*.md", "mkdocs.yml"]
PYTHON = ["framework/**/*.py", "benchmarks/**/*.py", "tests/**/*.py", "docs/**/*.py"]
HASH_COMMENTS = [
    "conf/**/*.yaml",
    "experiments/**/*.yaml",
    "framework/**/*.yaml",
    "benchmarks/**/*.sh",
    "Makefile",
    ".ci/run",
    "pyproject.toml",
]


def _files(patterns: list[str]) -> list[Path]:
    """The files matching ``patterns``, each once (conf/experiment links to experiments/)."""
    found = {path.resolve(): path for pattern in patterns for path in PROJECT_ROOT.glob(pattern) if path.is_file()}
    return sorted(path for resolved, path in found.items() if resolved.is_relative_to(PROJECT_ROOT))


def python_text(source: str) -> list[tuple[int, str]]:
    """The comments (consecutive lines joined) and docstrings of a Python source, each with the
    line it starts on."""
    lines = source.splitlines()
    comments = [
        (token.start[0], token.string) for token in tokenize.generate_tokens(io.StringIO(source).readline) if token.type == tokenize.COMMENT
    ]
    chunks = _join_consecutive(comments)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                chunks.append((first.lineno, "\n".join(lines[first.lineno - 1 : first.end_lineno])))
    return chunks


def hash_comments(source: str) -> list[tuple[int, str]]:
    """The ``#`` comments of a YAML, shell, Makefile or TOML file (consecutive lines joined)."""
    comments = []
    for number, line in enumerate(source.splitlines(), start=1):
        quote = None
        for index, char in enumerate(line):
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (index == 0 or line[index - 1] in " \t"):
                comments.append((number, line[index:]))
                break
    return _join_consecutive(comments)


def _join_consecutive(comments: list[tuple[int, str]]) -> list[tuple[int, str]]:
    chunks: list[tuple[int, str]] = []
    for number, text in comments:
        if chunks and chunks[-1][0] + chunks[-1][1].count("\n") == number - 1:
            chunks[-1] = (chunks[-1][0], chunks[-1][1] + "\n" + text)
        else:
            chunks.append((number, text))
    return chunks


def project_text() -> list[tuple[str, int, str]]:
    """(file, first line, text) for every piece of the project's text that is checked."""
    pieces = []
    for patterns, extract in ((WHOLE_TEXT, lambda source: [(1, source)]), (PYTHON, python_text), (HASH_COMMENTS, hash_comments)):
        for path in _files(patterns):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            pieces += [(relative, line, text) for line, text in extract(path.read_text(encoding="utf-8"))]
    return pieces


def history_hits() -> list[str]:
    hits = []
    for relative, line, text in project_text():
        for match in HISTORY.finditer(text):
            phrase = " ".join(match.group().split())
            hits.append(f"{relative}:{line + text.count(chr(10), 0, match.start())}: {phrase!r}")
    return hits


def test_no_development_history_in_the_project_text():
    """Text that tells how the code came to be (issue numbers, commit ids, work periods, what it
    did before) belongs in the version history, not in the documentation or the code."""
    assert project_text(), "no project text found"
    hits = history_hits()
    assert not hits, "Development history in the project's text; say what the project is and does:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "text, found",
    [
        ("a run of 5 steps", []),
        ("it is No longer\n  there", ["No longer"]),
        ("see commit 56ad898 and issue 19", ["commit 56ad898", "issue 19"]),
        ("an older version; the latest run of this", ["older version", "latest run of this"]),
        ("a tissue, sessional, reissue 4", []),
    ],
)
def test_history_phrases(text, found):
    assert [match.group() for match in HISTORY.finditer(text)] == found


def test_comments_and_docstrings_are_found():
    source = '"""Module doc."""\nx = "# not a comment"  # a comment\n# and\n# more\n\n\ndef f():\n    """Doc\n    of f."""\n'
    assert python_text(source) == [(2, "# a comment\n# and\n# more"), (1, '"""Module doc."""'), (8, '    """Doc\n    of f."""')]
    assert hash_comments('a: "#x"  # note\nb: c#d\n# whole\n') == [(1, "# note"), (3, "# whole")]


_FENCED = re.compile(r"^ *(```|~~~).*?^ *\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(
    r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)|(?:href|src)=\"([^\"]+)\"", re.MULTILINE
)


def readme_links(text: str) -> list[str]:
    """The link targets of a Markdown text outside code: inline, reference and HTML links."""
    text = _CODE_SPAN.sub("", _FENCED.sub("", text))
    return [next(group for group in match.groups() if group) for match in _LINK.finditer(text)]


def test_readme_links_reach_files():
    """Relative links of README.md (into docs/, to files of the project) point at files that exist;
    mkdocs checks the links of docs/, not those of the README."""
    links = readme_links((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    relative = [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", link, re.IGNORECASE)]
    missing = [link for link in relative if not (PROJECT_ROOT / unquote(link.split("#")[0].split("?")[0])).exists()]
    assert not missing, "README.md links to files that do not exist:\n" + "\n".join(missing)


def test_links_are_found():
    text = '[a](docs/a.md#x) ![i](docs/images/i.png "t")\n[ref]: docs/b.md\n<a href="docs/c.md">c</a> `[no](x.md)`\n```\n[no](y.md)\n```\n'
    assert readme_links(text) == ["docs/a.md#x", "docs/images/i.png", "docs/b.md", "docs/c.md"]
