"""The generated reference pages of the site (docs/gen_reference.py): the configuration page lists
every group, option and key found in conf/ and experiments/; the commands page every console script."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF = PROJECT_ROOT / "conf"


@pytest.fixture(scope="module")
def gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", PROJECT_ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_reference"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gen_reference", None)


@pytest.fixture(scope="module")
def configuration_page(gen_reference) -> str:
    return gen_reference.configuration_page()


def option_files() -> dict[str, list[Path]]:
    """``group -> option files`` as the file system has them (conf/experiment links to experiments/)."""
    groups: dict[str, list[Path]] = {}
    for folder, _, files in os.walk(CONF, followlinks=True):
        for name in files:
            if name.endswith(".yaml") and Path(folder) != CONF:
                groups.setdefault(Path(folder).relative_to(CONF).as_posix(), []).append(Path(folder) / name)
    return groups


def keys(values, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [key for name, value in values.items() for key in keys(value, f"{prefix}{name}.")]
    return [prefix[:-1]] if prefix else []


def section(page: str, heading: str) -> str:
    """The text from ``heading`` to the next heading of the same or a higher level."""
    start = page.index(heading)
    level = heading.split(" ")[0]
    following = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(page, start + len(heading))
    return page[start : following.start() if following else len(page)]


def test_every_group_option_and_key_is_listed(configuration_page):
    groups = option_files()
    assert "experiment" in groups and "model" in groups and "prepare/filters" in groups
    missing = []
    for group, paths in sorted(groups.items()):
        if f"\n### {group} " not in configuration_page:
            missing.append(f"group {group}")
        for path in paths:
            heading = f"#### `{group}={path.stem}`"
            if heading not in configuration_page:
                missing.append(f"option {group}={path.stem}")
                continue
            text = section(configuration_page, heading)
            values = yaml.safe_load(path.read_text()) or {}
            values.pop("defaults", None)
            for key in keys(values):
                if not key.split(".")[-1].startswith("_") and f"{key}`" not in text:
                    missing.append(f"key {key} of {group}={path.stem}")
    assert not missing, "The configuration reference lacks:\n" + "\n".join(missing)


def test_every_entry_point_is_listed(configuration_page):
    entries = sorted(path.stem for path in CONF.glob("*.yaml"))
    assert "train" in entries
    assert [entry for entry in entries if f"\n### {entry} " not in configuration_page] == []
    train = section(configuration_page, "\n### train ")
    for key in ("seed", "resume", "finetune.head_lr", "sample.prompt"):
        assert f"| `{key}` |" in train


def test_types_come_from_the_schema(configuration_page):
    gpt = section(configuration_page, "#### `model=gpt`")
    assert "| `model.n_layer` | `4` | an integer |" in gpt
    assert "| `model.compile` | `false` | true or false |" in gpt


def test_every_console_script_has_its_help(gen_reference):
    page = gen_reference.commands_page()
    scripts = gen_reference.console_scripts()
    assert "lmf-train" in scripts
    for script in scripts:
        help_text = section(page, f"## {script.removeprefix('lmf-')}\n")
        assert "```text\n" in help_text and len(help_text.splitlines()) > 6, f"no --help text for {script}"


def test_every_key_on_the_configuration_page_has_a_description(configuration_page, gen_reference):
    rows = [line for line in configuration_page.splitlines() if line.startswith("| `")]
    cells = [re.split(r"(?<!\\)\|", line.strip()[1:-1]) for line in rows]
    undescribed = [row[0].strip() for row in cells if not row[-1].strip()]
    assert len(rows) > 500 and undescribed == []  # a key without a comment in conf/: add one where the key is defined
    # a key without its own comment is described by the option that defines it for that file
    page = configuration_page
    assert "| `model.n_layer` | `12` | an integer | Transformer blocks |" in section(page, "#### `experiment=gpt2_124m`")
    assert "| `model.n_layer` | `4` | an integer | encoder blocks |" in section(page, "#### `experiment=sst2_finetune`")
    assert "| `trainer.max_steps` | `2000` | an integer | optimizer steps of the run |" in section(
        page, "#### `experiment=shakespeare_char`"
    )
    assert "(BERT: 0.1)" not in section(page, "#### `model=gpt_classifier`")
