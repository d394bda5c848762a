"""The settings of the commands on a finished run, checked before they load anything."""

import pytest

from framework.cli.evaluate import EvaluateConfig
from framework.cli.finished_run import register_schema
from framework.cli.generate import GenerateConfig
from framework.cli.precheck import check_command_line
from framework.errors import ConfigError


@pytest.fixture(scope="module", autouse=True)
def schemas():
    register_schema("evaluate", EvaluateConfig, open_keys=("data",))
    register_schema("generate", GenerateConfig)


@pytest.mark.parametrize(
    "command, arguments, named",
    [
        ("evaluate", ["run_dir=r", "splt=test"], "Unknown config key 'splt'. Did you mean 'split'?"),
        ("generate", ["run_dir=r", "top_k=many"], "top_k"),
        ("generate", ["run_dir=r", "prompt_text=x"], "'prompt_text'"),
        ("evaluate", ["run_dir=r", "model=lstm"], "'model=lstm' selects a training config group, which evaluate does not take"),
        ("evaluate", ["run_dir=r", "harness.tasks=shipped"], "harness.tasks takes a list: write 'harness.tasks=[shipped]'"),
    ],
)
def test_bad_settings_are_refused_naming_them(command, arguments, named):
    with pytest.raises(ConfigError) as refused:
        check_command_line(command, arguments)
    assert named in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_evaluate_takes_any_data_key_without_a_plus():
    check_command_line("evaluate", ["run_dir=r", "data.path=other.txt", "data.source.text_field=body"])


def test_an_error_prints_its_brackets(capsys):
    from framework.cli.precheck import user_errors_exit

    with pytest.raises(SystemExit), user_errors_exit():
        raise ConfigError("write 'harness.tasks=[shipped]'")
    assert "harness.tasks=[shipped]" in capsys.readouterr().err  # not read as rich markup
