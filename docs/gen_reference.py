"""The generated reference pages of the documentation site, written at ``mkdocs build`` by
mkdocs-gen-files (mkdocs.yml runs this script; the site does not include it):

- reference/configuration.md: every config of conf/ and experiments/: the entry points' own keys,
  every group with its options, each option's keys with their defaults, the comments of the YAML
  as descriptions, and the types the config check (framework/run/schema.py) accepts;
- reference/commands.md: the ``--help`` text of every console script of pyproject.toml.

``python docs/gen_reference.py <folder>`` writes both pages into ``<folder>`` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ENTRY_POINTS = ("train", "evaluate", "generate", "predict", "export", "prepare")
SETTINGS = {name: (f"framework.cli.{name}", f"{name.capitalize()}Config") for name in ("evaluate", "generate", "predict", "export")}
PAGES = ("reference/configuration.md", "reference/commands.md")

_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)")
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>'[^']*'|\"[^\"]*\"|[^\s#'\"\-][^:#]*?|\(\)):(?:[ \t]+(?P<rest>.*))?$")
_SCRIPT = re.compile(r'^\s*"?(?P<name>[\w.-]+)"?\s*=\s*"(?P<target>[\w.:]+)"')


# --- YAML files: keys, values as written, comments ----------------------------------------------


def split_comment(text: str) -> tuple[str, str]:
    """``(value, comment)`` of the text after a key's colon: the comment starts at a ``#`` outside
    quotes that follows white space."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"" and (index == 0 or text[index - 1] in " \t[{,:"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].strip(), text[index + 1 :].strip()
    return text.strip(), ""


@dataclasses.dataclass
class ConfigFile:
    """One YAML config: its package, description (the comments at its top), defaults list, values
    and, per dotted key (relative to the file), the value as written and the key's comments."""

    path: Path
    package: str | None
    header: list[str]
    defaults: list[Any]
    values: dict[str, Any]
    written: dict[str, str]
    comments: dict[str, str]

    @property
    def shown_path(self) -> str:
        return self.path.resolve().relative_to(ROOT).as_posix()


@functools.cache
def read_config(path: Path) -> ConfigFile:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    package, header = None, []
    index = 0
    while index < len(lines) and lines[index].lstrip().startswith("#"):
        if match := _PACKAGE.match(lines[index].strip()):
            package = match[1]
        else:
            header.append(lines[index].strip()[1:].removeprefix(" "))
        index += 1
    loaded = yaml.safe_load(text) or {}
    written: dict[str, str] = {}
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in lines[index:]:
        if line.lstrip().startswith("#"):
            above.append(line.strip()[1:].strip())
            continue
        match = _KEY_LINE.match(line)
        if not match or not line.strip():
            above = []
            continue
        indent, key = len(match["indent"]), match["key"].strip("'\"")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        dotted = ".".join(name for _, name in stack)
        value, comment = split_comment(match["rest"] or "")
        if value:
            written[dotted] = value
        description = " ".join([*above, comment]).strip()
        if description:
            comments[dotted] = description
        above = []
    return ConfigFile(path, package, header, loaded.pop("defaults", []) if isinstance(loaded, dict) else [], loaded, written, comments)


def leaves(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The keys (as paths of names) of the values of a config (an empty mapping is a value)."""
    if isinstance(values, dict) and values:
        return [key for name, value in values.items() for key in leaves(value, (*prefix, str(name)))]
    return [prefix] if prefix else []


def value_at(values: Any, path: tuple[str, ...] | str) -> Any:
    for name in _split(path) if isinstance(path, str) else path:
        values = values[name]
    return values


def _split(dotted: str) -> list[str]:
    return dotted.split(".") if dotted else []


def placed(values: dict, package: str) -> dict:
    """``values`` nested under ``package`` (a dotted path; ``""`` for the top level)."""
    for name in reversed(_split(package)):
        values = {name: values}
    return values


def flow(value: Any) -> str:
    """A value as YAML's flow style writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    if isinstance(value, str) and (not value.isprintable() or not value):
        return json.dumps(value)
    return str(value)


# --- types: what framework/run/schema.py checks -------------------------------------------------


@functools.cache
def _schema():
    try:
        return importlib.import_module("framework.run.schema")
    except Exception:  # the framework's dependencies are not installed: the page has no types
        return None


@functools.cache
def _target_parameters(target: str) -> tuple[dict[str, Any], dict[str, inspect.Parameter]]:
    """The type hints and the keyword parameters of the function a ``_target_`` calls."""
    schema = _schema()
    try:
        function = schema._target_callable(target)
        parameters = {name: inspect.signature(function).parameters[name] for name in schema.target_arguments(target)}
    except Exception:  # a plugin or an extra that is not installed
        return {}, {}
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    return hints, parameters


def _node(values: Any, dotted: tuple[str, ...] | str) -> Any:
    try:
        return value_at(values, dotted)
    except (KeyError, TypeError):
        return None


class Types:
    """The type of a key in a config: the annotation of the ``_target_``'s parameter, or the
    field of the schema's dataclass for the nodes without ``_target_`` (data, paths, ...).

    ``contexts`` are configs (nested dicts from the top level) searched in order for the key's
    parent node; ``data`` is the ``data`` node that decides the data schema.
    """

    def __init__(self, *contexts: dict, data: dict | None = None) -> None:
        self.contexts = [context for context in contexts if context]
        self.data = data if data is not None else next((c["data"] for c in self.contexts if isinstance(c.get("data"), dict)), {})
        self.schema = _schema()

    def parent_target(self, dotted: str) -> str | None:
        parent = dotted.rpartition(".")[0]
        for context in self.contexts:
            node = _node(context, parent) if parent else context
            if isinstance(node, dict) and isinstance(node.get("_target_"), str):
                return node["_target_"]
        return None

    def of(self, dotted: str) -> str:
        schema = self.schema
        if schema is None or dotted.rpartition(".")[2].startswith("_"):
            return ""
        parent, _, name = dotted.rpartition(".")
        if target := self.parent_target(dotted):
            hints, _ = _target_parameters(target)
            annotation = schema.TRAINING_KEYS.get(parent, {}).get(name, hints.get(name))
            return "" if annotation is None else schema._describe(annotation)
        if not parent:  # seed, threads, resume, ...: a type, or a schema for a whole node
            kind = schema.TOP_LEVEL.get(name)
            is_node = kind is None or dataclasses.is_dataclass(kind) or kind in (schema._Instantiable, schema._InstantiableMap)
            return "" if is_node else schema._describe(kind)
        node_schema = schema.TOP_LEVEL.get(parent)
        if parent == "data":
            node_schema = schema.PreparedDataSchema if schema.prepared_data(self.data) else schema.DataSchema
        if node_schema is not None and dataclasses.is_dataclass(node_schema):
            hints = typing.get_type_hints(node_schema)
            return schema._describe(hints[name]) if name in hints else ""
        return ""


# --- Markdown -------------------------------------------------------------------------------------

_ESCAPED = str.maketrans({char: "\\" + char for char in "\\`*_[]|{}"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})
_CODE_SPAN = re.compile(r"(?::\w+:)?``?([^`]+)``?")


def text(value: str) -> str:
    """Plain text for Markdown (a table cell or a paragraph): nothing in it is markup but the
    code spans (`x`, and reStructuredText's ``x`` and :role:`x` of docstrings)."""
    parts, position = [], 0
    for match in _CODE_SPAN.finditer(value):
        parts += [value[position : match.start()].translate(_ESCAPED), code(match[1])]
        position = match.end()
    return "".join([*parts, value[position:].translate(_ESCAPED)])


def code(value: str) -> str:
    """An inline code span (a ``|`` in it does not split a table's cell)."""
    ticks = "``" if "`" in value else "`"
    return f"{ticks}{value}{ticks}" if value else '`""`'


def anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^\w-]+", "-", part) for part in parts).strip("-")


def paragraphs(lines: list[str]) -> list[str]:
    """Comment lines as Markdown: prose joined into paragraphs, indented lines (commands and
    examples) as text blocks."""
    out: list[str] = []
    prose: list[str] = []
    example: list[str] = []

    def flush() -> None:
        if prose:
            out.extend([text(" ".join(prose)), ""])
            prose.clear()
        if example:
            out.extend(["```text", *textwrap.dedent("\n".join(example)).splitlines(), "```", ""])
            example.clear()

    for line in lines:
        is_example = line.startswith("  ") or (line.startswith("python -m ") and ": " not in line) or bool(example and line.startswith(" "))
        if not line.strip() or (is_example and prose) or (not is_example and example):
            flush()
        if line.strip():
            (example if is_example else prose).append(line.rstrip() if is_example else line.strip())
    flush()
    return out


# Groups whose options set keys of other groups (package _global_): their keys are described
# where the group that owns the key describes it.
OVERRIDING_GROUPS = ("experiment", "debug", "hparams_search")


@functools.cache
def option_comments(group: str, option: str) -> dict[str, str]:
    """``full dotted key -> comment`` of one option and of the options of its group it builds on."""
    path = option_file(group, option)
    if path is None:
        return {}
    config = read_config(path)
    prefix = prefix_of(config, group)
    found = {f"{prefix}.{key}" if prefix else key: comment for key, comment in config.comments.items()}
    for item in config.defaults:
        if isinstance(item, str) and item != "_self_":
            found = {**option_comments(group, item), **found}
    return found


def borrowed_description(config: ConfigFile, group: str | None, full: str) -> str:
    """The comment of ``full`` in the file that defines it for ``config``: an option it builds on
    (``data=labelled_files`` on ``sst2``); for a key another group owns, that group's option the
    file chooses in its defaults list, else the entry point's default option (an experiment's
    ``model.n_layer`` is described by ``model=gpt`` when the experiment runs a GPT)."""
    if group is not None and (own := option_comments(group, Path(config.path).stem).get(full)):
        return own
    if group not in OVERRIDING_GROUPS:
        return ""
    chosen = {**defaults_of("prepare"), **defaults_of("train")}
    for item in config.defaults:
        if isinstance(item, dict):
            ((other, option),) = item.items()
            chosen[other.removeprefix("override ").lstrip("/")] = option
    for other, option in chosen.items():
        if other not in OVERRIDING_GROUPS and isinstance(option, str) and (comment := option_comments(other, option).get(full)):
            return comment
    return read_config(CONF / "train.yaml").comments.get(full, "")


def library_description(full: str, types: Types) -> str:
    """What a key without a comment anywhere is, when another project defines it: the class a
    ``_target_`` builds, an argument of a library's class, or a Hydra setting."""
    name = full.rpartition(".")[2]
    target = types.parent_target(full)
    if name == "_target_":
        return "The class or function built here; the keys beside it are its arguments."
    if target and not target.startswith("framework."):
        return f"Argument of `{target}`; its documentation describes it."
    if full.startswith("hydra.") and not full.startswith("hydra.sweeper.params."):
        return "Hydra's setting; Hydra's documentation (hydra.cc) describes it."
    return ""


def key_table(config: ConfigFile, prefix: str, types: Types, group: str | None = None, skip_root_target: bool = True) -> list[str]:
    """The table of the keys a config file sets: key (as typed on the command line), default,
    type and description (the key's comment, else :func:`borrowed_description`, else
    :func:`library_description`)."""
    rows = []
    described: set[str] = set()
    for path in leaves(config.values):
        key, name = ".".join(path), path[-1]
        for depth in range(1, len(path)):
            node = ".".join(path[:depth])
            if node in config.comments and node not in described:
                described.add(node)
                full_node = f"{prefix}.{node}" if prefix else node
                rows.append(f"| {code(full_node)} |  |  | {text(config.comments[node])} |")
        if name.startswith("_") and (name != "_target_" or (skip_root_target and len(path) == 1)):
            continue
        full = f"{prefix}.{key}" if prefix else key
        default = config.written.get(key, flow(value_at(config.values, path)))
        description = config.comments.get(key) or borrowed_description(config, group, full) or library_description(full, types)
        rows.append(f"| {code(full)} | {code(default)} | {text(types.of(full))} | {text(description)} |")
    if not rows:
        return []
    return ["| Key | Default | Type | Description |", "| --- | --- | --- | --- |", *rows, ""]


def other_arguments(config: ConfigFile, prefix: str) -> list[str]:
    """For each node that builds a ``_target_``: the arguments with defaults that the file leaves out."""
    lines = []
    for path in [(), *(path[:-1] for path in leaves(config.values) if len(path) > 1 and path[-1] == "_target_")]:
        key = ".".join(path)
        node = _node(config.values, path) if path else config.values
        if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
            continue
        _, parameters = _target_parameters(node["_target_"])
        others = [name for name, parameter in parameters.items() if name not in node and parameter.default is not inspect.Parameter.empty]
        full = ".".join(part for part in (prefix, key) if part)
        if others:
            names = ", ".join(code(name) for name in others)
            lines += [f"Other arguments of {code(node['_target_'])}, added with {code(f'+{full}.<name>=<value>')}: {names}.", ""]
    return lines


# --- the configuration page -----------------------------------------------------------------------


def config_groups() -> dict[str, list[Path]]:
    """``group -> option files``: every folder of conf/ that holds YAML files (experiment is
    experiments/, through the conf/experiment link)."""
    groups = {}
    for folder, _, files in os.walk(CONF, followlinks=True):
        options = sorted(Path(folder) / name for name in files if name.endswith(".yaml"))
        if options and Path(folder) != CONF:
            groups[Path(folder).relative_to(CONF).as_posix()] = options
    return dict(sorted(groups.items()))


def defaults_of(entry: str) -> dict[str, str]:
    """``group -> default option`` of an entry point's defaults list."""
    chosen = {}
    for item in read_config(CONF / f"{entry}.yaml").defaults:
        if isinstance(item, dict):
            ((group, option),) = item.items()
            chosen[group.removeprefix("override ").lstrip("/")] = option
    return chosen


def _shown_option(option: Any) -> str:
    if isinstance(option, list):
        return "[" + ",".join(option) + "]"
    return "null" if option is None else str(option)


def option_file(group: str, option: str) -> Path | None:
    path = CONF / group / f"{option}.yaml"
    return path if path.is_file() else None


def prefix_of(config: ConfigFile, group: str) -> str:
    """Where an option's keys go: its ``@package`` (default: the group's path), ``""`` for the top level."""
    package = config.package if config.package is not None else group.replace("/", ".")
    return "" if package == "_global_" else package


def deep_merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def option_contexts(group: str, option: str) -> list[tuple[str, dict]]:
    """``(group, values)`` of what one option brings, each from the top level: first the option's
    own values over those of the options of its group it builds on, then the options of other
    groups its defaults list chooses. Enough of Hydra's composition to find the ``_target_`` above
    a key; the key's own values come from the file alone."""
    config = read_config(option_file(group, option))
    own: dict = {}
    chosen: list[tuple[str, dict]] = []
    for item in config.defaults:
        if isinstance(item, str) and item != "_self_" and option_file(group, item):
            sibling, *others = option_contexts(group, item)
            own, chosen = deep_merge(own, sibling[1]), chosen + others
        elif isinstance(item, dict):
            ((other, choices),) = item.items()
            other = other.removeprefix("override ").lstrip("/")
            for choice in choices if isinstance(choices, list) else [choices]:
                if isinstance(choice, str) and option_file(other, choice):
                    chosen += option_contexts(other, choice)
    return [(group, deep_merge(own, placed(config.values, prefix_of(config, group)))), *chosen]


def _compose(entry: str, overrides: list[str]) -> dict:
    """The config Hydra composes for ``entry`` with ``overrides``, unresolved; empty when it cannot."""
    try:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return OmegaConf.to_container(compose(config_name=entry, overrides=overrides), resolve=False)
    except Exception:
        return {}


def defaults_line(config: ConfigFile, group: str) -> list[str]:
    """What an option's defaults list builds on or chooses."""
    chosen = []
    for item in config.defaults:
        if isinstance(item, str) and item != "_self_":
            chosen.append(f"{group}={item}")
        elif isinstance(item, dict):
            ((other, option),) = item.items()
            chosen.append(f"{other.removeprefix('override ').lstrip('/')}={_shown_option(option)}")
    return [f"Builds on: {', '.join(code(item) for item in chosen)}.", ""] if chosen else []


def option_section(group: str, path: Path, base: dict) -> list[str]:
    """One option of a group: its file, description, what it builds on, its keys."""
    config = read_config(path)
    option = path.stem
    prefix = prefix_of(config, group)
    contexts = option_contexts(group, option)
    data = next((values["data"] for chosen, values in contexts if chosen == "data" and isinstance(values.get("data"), dict)), None)
    types = Types(*(values for _, values in contexts), base, data=data)
    lines = [f"#### {code(f'{group}={option}')} {{ #{anchor(group, option)} }}", "", f"File: {code(config.shown_path)}.", ""]
    lines += paragraphs(config.header)
    target = config.values.get("_target_") if isinstance(config.values, dict) else None
    if isinstance(target, str):
        lines += [f"Builds {code(target)}; its arguments are the keys below.", ""]
    lines += defaults_line(config, group)
    lines += key_table(config, prefix, types, group)
    lines += other_arguments(config, prefix)
    return lines


def entry_section(entry: str, types: Types) -> list[str]:
    config = read_config(CONF / f"{entry}.yaml")
    lines = [f"### {entry} {{ #{anchor('entry', entry)} }}", "", f"File: {code(config.shown_path)}.", ""]
    lines += paragraphs(config.header)
    defaults = {group: option for group, option in defaults_of(entry).items() if (CONF / group).is_dir()}
    if defaults:
        lines += ["| Group | Default option |", "| --- | --- |"]
        lines += [f"| [{text(group)}](#{anchor(group)}) | {code(_shown_option(option))} |" for group, option in defaults.items()]
        lines.append("")
    if entry in SETTINGS:
        lines += settings_table(*SETTINGS[entry])
    else:
        lines += key_table(config, "", types)
    return lines


def _field_comments(cls: type) -> dict[str, str]:
    """The trailing comment of each field of a dataclass's source, or its docstring's
    ``Attributes:`` entry."""
    comments: dict[str, str] = {}
    docstring = inspect.getdoc(cls) or ""
    attributes = docstring.split("Attributes:", 1)[1] if "Attributes:" in docstring else ""
    for match in re.finditer(r"^ {4}(\w+): (.*(?:\n {8,}.*)*)", attributes, re.MULTILINE):
        comments[match[1]] = " ".join(match[2].split())
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return comments
    for line in source.splitlines():
        if match := re.match(r"^ {4}(\w+):[^#]*#\s*(.*)$", line):
            comments[match[1]] = match[2]
    return comments


def settings_table(module: str, name: str) -> list[str]:
    """The keys of a command whose config is a dataclass (evaluate, generate, predict, export)."""
    schema = _schema()
    try:
        cls = getattr(importlib.import_module(module), name)
    except Exception:
        return [f"Its keys are the fields of {code(f'{module}.{name}')}.", ""]
    rows = []

    def add(cls: type, prefix: str) -> None:
        hints, comments = typing.get_type_hints(cls), _field_comments(cls)
        for field in dataclasses.fields(cls):
            if field.default is dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory):
                add(field.default_factory, f"{prefix}{field.name}.")
                continue
            if field.default is not dataclasses.MISSING:
                default = flow(field.default)
            elif field.default_factory in (list, dict):
                default = flow(field.default_factory())
            else:
                default = "(computed)"
            kind = schema._describe(hints[field.name]) if schema else ""
            rows.append(f"| {code(prefix + field.name)} | {code(default)} | {text(kind)} | {text(comments.get(field.name, ''))} |")

    add(cls, "")
    return ["| Key | Default | Type | Description |", "| --- | --- | --- | --- |", *rows, ""]


def configuration_page() -> str:
    """reference/configuration.md."""
    groups = config_groups()
    train_defaults, prepare_defaults = defaults_of("train"), defaults_of("prepare")
    train_base, prepare_base = _compose("train", []), _compose("prepare", [])

    sections = [
        ("Groups of the training command", [group for group in train_defaults if group in groups]),
        (
            "Groups of the corpus preparation command",
            [group for group in prepare_defaults if group in groups and group not in train_defaults],
        ),
    ]
    listed = {group for _, names in sections for group in names}
    sections.append(("Hydra's groups", [group for group in groups if group not in listed]))

    lines = [
        "# Configuration",
        "",
        "Every config of `conf/` and `experiments/`, generated from the files by `docs/gen_reference.py` when the site is "
        "built. A command line chooses one option of a group with `group=option` and sets a key with `key=value`; a key "
        "that the composed config does not hold is added with `+key=value`. The types are what the check before a run "
        "accepts (`framework/run/schema.py`: a key of a node with `_target_` takes the type of that class's or function's "
        "argument). `python -m framework.train --cfg job` prints the composed config of a command line.",
        "",
        "## Entry points",
        "",
    ]
    base_types = Types(train_base)
    for entry in ENTRY_POINTS:
        if (CONF / f"{entry}.yaml").is_file():
            lines += entry_section(entry, base_types if entry == "train" else Types(prepare_base) if entry == "prepare" else Types())
    for title, names in sections:
        lines += [f"## {title}", ""]
        for group in names:
            users = [entry for entry, defaults in (("train", train_defaults), ("prepare", prepare_defaults)) if group in defaults]
            default = train_defaults.get(group, prepare_defaults.get(group))
            options = ", ".join(f"[{code(path.stem)}](#{anchor(group, path.stem)})" for path in groups[group])
            lines += [f"### {group} {{ #{anchor(group)} }}", ""]
            summary = f"Options: {options}."
            if users:
                summary += f" Default: {code(_shown_option(default))}." + (" Used by: " + ", ".join(users) + "." if users else "")
            lines += [summary, ""]
            base = prepare_base if "prepare" in users and "train" not in users else train_base
            for path in groups[group]:
                lines += option_section(group, path, base)
    return "\n".join(lines).rstrip() + "\n"


# --- the commands page ----------------------------------------------------------------------------


def console_scripts() -> dict[str, str]:
    """``script -> module:function`` of pyproject.toml's ``[project.scripts]``."""
    scripts, inside = {}, False
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            inside = line.strip() == "[project.scripts]"
        elif inside and (match := _SCRIPT.match(line)):
            scripts[match["name"]] = match["target"]
    return scripts


def command_help(script: str) -> str:
    """The ``--help`` text of a console script (``lmf-train``): framework.cli.usage.command_help, or
    the output of ``python -m framework.<name> --help``."""
    name = script.removeprefix("lmf-")
    try:
        from framework.cli.usage import command_help as usage_help

        return usage_help(name)
    except (ImportError, KeyError):
        module = "framework." + name.replace("-", "_")
        environment = {**os.environ, "COLUMNS": "100"}
        result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, env=environment)
        return result.stdout


def commands_page() -> str:
    """reference/commands.md."""
    scripts = console_scripts()
    with ThreadPoolExecutor(max_workers=4) as pool:
        helps = dict(zip(scripts, pool.map(command_help, scripts)))
    lines = [
        "# Commands",
        "",
        "What each command prints for `--help`, generated by `docs/gen_reference.py` when the site is built. Every "
        "command runs as `python -m framework.<name>` or as its console script `lmf-<name>` (installed with the project).",
        "",
    ]
    for script, target in scripts.items():
        module = "framework." + script.removeprefix("lmf-").replace("-", "_")
        lines += [f"## {script.removeprefix('lmf-')}", "", f"{code(script)} or {code(f'python -m {module}')} ({code(target)}).", ""]
        lines += ["```text", helps[script].rstrip("\n"), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_pages(write: Callable[[str, str], None]) -> None:
    write(PAGES[0], configuration_page())
    write(PAGES[1], commands_page())


def _write_with_gen_files(name: str, content: str) -> None:
    import mkdocs_gen_files

    with mkdocs_gen_files.open(name, "w") as page:
        page.write(content)
    mkdocs_gen_files.set_edit_path(name, "gen_reference.py")


if __name__ == "<run_path>":  # mkdocs-gen-files
    write_pages(_write_with_gen_files)
elif __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/gen_reference.py <folder>")

    def _write_file(name: str, content: str) -> None:
        target = Path(sys.argv[1]) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")

    write_pages(_write_file)
