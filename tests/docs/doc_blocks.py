"""The fenced blocks of the documentation pages (README.md, docs/**/*.md) and the ``docs-test``
directives above them, for tests/docs/test_doc_commands.py.

A ```` ```bash ```` block is run unless the directive lines directly above its fence say otherwise.
Each directive is one whole line, ``<!-- docs-test: BODY -->``; several may be stacked directly
above one fence (no blank line between them and the fence). BODY is one of:

``skip: REASON``
    the bash block below is not run; REASON is required.
``write PATH``
    the content of the (non-bash) block below is written to PATH, relative to the page's test
    directory, before the page's next bash block runs.
``MODULE += OVERRIDES [; MODULE += OVERRIDES ...]``
    OVERRIDES (shell text, inserted as typed) are appended to every command of the bash block
    below that runs MODULE: ``framework.train`` matches ``python -m framework.train`` and
    ``lmf-train``; ``benchmarks/muon.py`` matches ``python benchmarks/muon.py``. They go after the
    command's last argument: before a trailing ``# comment``, a pipe, ``&&`` or a redirection,
    across backslash line continuations.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Pages written by docs/gen_reference.py at build time; never on disk in docs/, never run.
GENERATED_PAGES = {"docs/reference/configuration.md", "docs/reference/commands.md"}
FORBIDDEN_LANGUAGES = {"sh", "shell", "console", "shell-session", "zsh"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_SKIP = re.compile(r"^skip\s*:(?P<reason>.*)$")
_WRITE = re.compile(r"^write(?:\s+(?P<path>.*))?$")
_CLAUSE = re.compile(r"^(?P<module>[\w./-]+)\s*\+=(?P<overrides>.*)$")
_CLAUSE_SEPARATOR = re.compile(r"\s*;\s*(?=[\w./-]+\s*\+=)")
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_OPERATORS = ("&&", "||", ";;", "|&", ";", "&", "|", "(", ")")
_REDIRECTIONS = ("<<<", "<<-", "<<", "&>>", "&>", ">>", ">&", ">|", "<&", "<>", ">", "<")


@dataclass
class Problem:
    page: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


@dataclass
class Block:
    page: str  # relative to the project root
    line: int  # the opening fence's line, counted from 1
    language: str  # the info string's first word, lower case; "" for a bare fence
    text: str  # the content, the fence's indentation removed
    skip: str | None = None
    overrides: dict[str, list[str]] = field(default_factory=dict)  # module -> overrides, in order
    write: str | None = None

    @property
    def is_bash(self) -> bool:
        return self.language == "bash"

    @property
    def runs(self) -> bool:
        return self.is_bash and self.skip is None

    def command(self) -> str:
        """The block's text as the test runs it: the overrides inserted."""
        text = self.text
        for module, overrides in self.overrides.items():
            text = append_overrides(text, module, " ".join(overrides))
        return text


@dataclass
class Page:
    path: str
    blocks: list[Block]
    problems: list[Problem]

    @property
    def runs(self) -> bool:
        return any(block.runs for block in self.blocks)


def documentation_pages(root: Path = PROJECT_ROOT) -> list[str]:
    """README.md and every docs/**/*.md except the generated ones, relative to ``root``."""
    pages = ["README.md"] if (root / "README.md").is_file() else []
    pages += sorted(path.relative_to(root).as_posix() for path in (root / "docs").rglob("*.md"))
    return [page for page in pages if page not in GENERATED_PAGES]


def read_page(path: str, root: Path = PROJECT_ROOT) -> Page:
    return parse_page(path, (root / path).read_text(encoding="utf-8"))


def parse_page(path: str, text: str) -> Page:
    """The fenced blocks of one page with their directives, and what is wrong with them."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[Problem] = []
    used: set[int] = set()  # indexes of directive lines that belong to a fence
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        if end == len(lines):
            problems.append(Problem(path, index + 1, f"the fence {fence} is never closed"))
        content = [_dedent(line, indent) for line in lines[index + 1 : end]]
        words = opening["info"].strip().lstrip("{").lstrip(".").split()
        block = Block(path, index + 1, words[0].lower().rstrip("}") if words else "", "\n".join(content) + "\n")
        directives = []
        above = index - 1
        while above >= 0 and _DIRECTIVE.match(lines[above]):
            directives.insert(0, (above, _DIRECTIVE.match(lines[above])["body"].strip()))
            used.add(above)
            above -= 1
        for directive_index, body in directives:
            problems += [Problem(path, directive_index + 1, message) for message in _apply_directive(block, body)]
        problems += [Problem(path, block.line, message) for message in _check_block(block)]
        blocks.append(block)
        index = end + 1
    fenced = {line for block in blocks for line in range(block.line - 1, block.line + block.text.count("\n") + 1)}
    for number, line in enumerate(lines):
        if "docs-test" in line and _DIRECTIVE.match(line) and number not in used and number not in fenced:
            problems.append(Problem(path, number + 1, "a docs-test directive must stand directly above a fence"))
    return Page(path, blocks, problems)


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _dedent(line: str, indent: int) -> str:
    leading = len(line) - len(line.lstrip(" \t"))
    return line[min(indent, leading) :]


def _apply_directive(block: Block, body: str) -> list[str]:
    """Record one directive on ``block``; the problems with it."""
    if skip := _SKIP.match(body):
        block.skip = skip["reason"].strip()
        if not block.skip:
            return ["docs-test: skip needs a reason: <!-- docs-test: skip: <reason> -->"]
        if not block.is_bash:
            return [f"docs-test: skip applies to bash blocks only (this one is {block.language or 'a bare fence'})"]
        return []
    if write := _WRITE.match(body):
        target = (write["path"] or "").strip()
        if not target:
            return ["docs-test: write needs a path: <!-- docs-test: write <relative path> -->"]
        block.write = target
        parts = PurePosixPath(target).parts
        if PurePosixPath(target).is_absolute() or ".." in parts:
            return [f"docs-test: write {target}: the path must be relative and stay inside the page's directory"]
        if block.is_bash:
            return ["docs-test: write applies to yaml, python, text ... blocks, not to bash blocks"]
        return []
    if "+=" in body:
        problems = []
        for clause in _CLAUSE_SEPARATOR.split(body):
            match = _CLAUSE.match(clause.strip())
            if not match:
                problems.append(f"docs-test: cannot read the clause {clause.strip()!r} (expected <module> += <overrides>)")
                continue
            module, overrides = match["module"], match["overrides"].strip()
            if not overrides:
                problems.append(f"docs-test: {module} += has no overrides")
                continue
            block.overrides.setdefault(module, []).append(overrides)
        return problems
    return [f"docs-test: unknown directive {body!r} (known: skip: <reason>; write <path>; <module> += <overrides>)"]


def _check_block(block: Block) -> list[str]:
    problems = []
    if block.language in FORBIDDEN_LANGUAGES:
        problems.append(f"```{block.language} fence: use ```bash for commands a user types, ```text for output")
    if block.overrides and not block.is_bash:
        problems.append("docs-test: += applies to bash blocks only")
    if not block.is_bash:
        return problems
    if block.skip is not None and block.overrides:
        problems.append("docs-test: a skipped block takes no += directive")
    commands = shell_commands(block.text)
    for module in block.overrides:
        if not any(runs_module(command, module) for command in commands):
            problems.append(f"docs-test: {module} += ...: no command of the block runs {module}")
    if block.runs:
        for offset, line in enumerate(block.text.splitlines()):
            if line.startswith("$ "):
                problems.append(f"line {block.line + 1 + offset}: a prompt ($) in a bash block; commands only (output goes in ```text)")
        installs = sorted({" ".join(word.value for word in command.words[:3]) for command in commands if installs_packages(command)})
        if installs:
            problems.append(
                f"{'; '.join(installs)}: installs into the environment the test shares; skip the block "
                "(<!-- docs-test: skip: installs packages -->) or move the install into a skipped block of its own"
            )
        placeholders = sorted({placeholder for command in commands for placeholder in command.placeholders})
        if placeholders:
            problems.append(
                f"placeholder(s) {', '.join(placeholders)} in a block that runs: name real paths, or skip the block with a reason"
            )
    return problems


# --- shell commands ---------------------------------------------------------------------------


@dataclass
class Word:
    start: int
    end: int
    raw: str

    @property
    def value(self) -> str:
        try:
            parts = shlex.split(self.raw)
        except ValueError:
            return self.raw
        return parts[0] if len(parts) == 1 else self.raw


@dataclass
class Command:
    """One simple command: its arguments (words before any redirection) and the placeholders
    (``<name>``) found where the shell would read a redirection."""

    words: list[Word] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


def shell_commands(text: str) -> list[Command]:
    """The simple commands of a bash script: enough of bash's grammar for documentation blocks
    (quotes, ``$(...)``, comments, line continuations, operators, redirections, here-documents)."""
    commands: list[Command] = []
    current = Command()
    redirected = False
    heredocs: list[str] = []
    index, length = 0, len(text)

    def finish() -> None:
        nonlocal current, redirected
        if current.words or current.placeholders:
            commands.append(current)
        current, redirected = Command(), False

    while index < length:
        char = text[index]
        if char == "\\" and text.startswith("\\\n", index):
            index += 2
        elif char in " \t":
            index += 1
        elif char == "\n":
            finish()
            index += 1
            for delimiter in heredocs:
                while index < length:
                    end = text.find("\n", index)
                    end = length if end < 0 else end
                    line, index = text[index:end], end + 1
                    if line.strip("\t") == delimiter:
                        break
            heredocs = []
        elif char == "#":
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif operator := next((op for op in _REDIRECTIONS if text.startswith(op, index)), None):
            if operator == "<" and (placeholder := _PLACEHOLDER.match(text, index)):
                current.placeholders.append(placeholder.group())
                index = placeholder.end()
                continue
            redirected = True
            index += len(operator)
            while index < length and text[index] in " \t":
                index += 1
            end = _word_end(text, index)
            if operator in ("<<", "<<-"):
                heredocs.append(Word(index, end, text[index:end]).value)
            index = end
        elif operator := next((op for op in _OPERATORS if text.startswith(op, index)), None):
            finish()
            index += len(operator)
        else:
            end = _word_end(text, index)
            if text[index:end].isdigit() and end < length and text[end] in "<>":
                index = end  # a file descriptor before a redirection (2>&1)
                continue
            if not redirected:
                current.words.append(Word(index, end, text[index:end]))
            index = max(end, index + 1)
    finish()
    return commands


def _word_end(text: str, index: int) -> int:
    """Where the shell word starting at ``index`` ends."""
    length = len(text)
    depth = 0
    while index < length:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "'":
            end = text.find("'", index + 1)
            index = length if end < 0 else end + 1
            continue
        if char == '"':
            index += 1
            while index < length and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
            index += 1
            continue
        if text.startswith("$(", index):
            depth += 1
            index += 2
            continue
        if char == ")" and depth:
            depth -= 1
            index += 1
            continue
        if not depth and (char in " \t\n;&|()<>"):
            break
        index += 1
    return min(index, length)


def script_name(module: str) -> str | None:
    """The console script that runs ``module``: framework.wandb_sweep -> lmf-wandb-sweep."""
    if module.startswith("framework.") and module.count(".") == 1:
        return "lmf-" + module.split(".", 1)[1].replace("_", "-")
    return None


def runs_module(command: Command, module: str) -> bool:
    """Whether ``command`` runs ``module`` (``python -m <module>``, its ``lmf-`` script, or
    ``python <file>`` for a module key that is a .py path)."""
    values = [word.value for word in command.words]
    if module.endswith(".py"):
        wanted = PurePosixPath(module).as_posix()
        return any(
            _PYTHON.match(values[position]) and PurePosixPath(values[position + 1]).as_posix().removeprefix("./") == wanted
            for position in range(len(values) - 1)
        )
    script = script_name(module)
    return any(value == script for value in values) or any(
        values[position] == "-m" and values[position + 1] == module for position in range(len(values) - 1)
    )


def installs_packages(command: Command) -> bool:
    """``pip install``, ``apt-get install`` or ``make`` (every target of the Makefile installs into .venv)."""
    values = [word.value.rpartition("/")[2] for word in command.words]
    if values and values[0] in ("make", "sudo") and ("make" in values):
        return True
    return any(
        value in ("pip", "pip3", "apt", "apt-get", "conda", "uv") and "install" in values[position + 1 :]
        for position, value in enumerate(values)
    )


def append_overrides(text: str, module: str, overrides: str) -> str:
    """``text`` with ``overrides`` after the last argument of every command that runs ``module``."""
    positions = [command.words[-1].end for command in shell_commands(text) if runs_module(command, module)]
    for position in sorted(positions, reverse=True):
        text = f"{text[:position]} {overrides}{text[position:]}"
    return text
