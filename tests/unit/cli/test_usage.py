"""Every command's --help (framework.cli.usage): its groups and their options as conf/ has them,
five keys with examples, and the other commands."""

import subprocess
import sys

import pytest
import yaml

from framework.cli.precheck import CONFIG_DIR
from framework.cli.usage import HYDRA_COMMANDS, SCRIPTS, command_help


def options(group: str) -> set[str]:
    return {path.stem for path in (CONFIG_DIR / group).glob("*.yaml")}


@pytest.mark.parametrize("name", [name for name, _, _ in SCRIPTS])
def test_every_command_names_the_others_and_where_the_documentation_is(name):
    text = command_help(name)
    others = [module for other, module, _ in SCRIPTS if other != name]
    assert all(f"python -m {module} " in text for module in others)
    assert f"python -m framework.{name.replace('-', '_')} " not in text.split("Other commands")[1]
    assert "Reference > Configuration page lists every key" in text


@pytest.mark.parametrize("name", list(HYDRA_COMMANDS))
def test_hydra_commands_list_their_groups_with_every_option_and_five_keys(name):
    text = command_help(name)
    groups = [
        next(iter(entry)).lstrip("/")
        for entry in yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())["defaults"]
        if isinstance(entry, dict) and next(iter(entry)) != "hydra"
    ]
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
    for group in groups:
        assert set(lines[group].split(None, 1)[1].split("   ")[0].replace("*", "").split(", ")) == options(group), group
    keys = text.split("Most used keys:\n")[1].split("\n\n")[0].splitlines()
    assert len(keys) == 5 and all("=" in key for key in keys)


def test_train_marks_its_defaults_and_evaluate_lists_its_settings_not_the_training_groups():
    train = command_help("train")
    assert "  data            " in train and "stdlib*" in train and "gpt*" in train and "adamw*" in train
    assert "gpt2_124m" in train  # experiments/ is the experiment group
    evaluate = command_help("evaluate")
    assert "harness.tasks=[]" in evaluate and "run_dir=???" in evaluate
    assert "tokenizer " not in evaluate and "optimizer" not in evaluate


def test_the_command_line_prints_the_help_and_exits_zero(tmp_path):
    result = subprocess.run([sys.executable, "-m", "framework.generate", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == command_help("generate")
    assert not (tmp_path / "logs").exists()  # nothing written
