"""The command line, checked before Hydra starts a job: config options and keys that do not
exist, plugins that are not installed, and how the processes of a run were launched.

Hydra refuses an unknown override with its own message (and a traceback with
``HYDRA_FULL_ERROR=1``). :func:`check_command_line` composes the config first and names the
bad option or key with the nearest valid ones. Values, types and cross-field rules are checked
once, in the job, by ``framework.run.schema``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.markup import escape

from framework.errors import USER_ERROR_STATUS, ConfigError, MissingDependencyError, UserInputError
from framework.run.kinds import prepared_data
from framework.run.schema import config_error, target_arguments, unknown_key_error
from framework.strategy.launch import external_launcher

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# Each Hydra plugin this project's configs select: the package it runs on, and the extra installing both.
PLUGINS = {
    "hydra_plugins.hydra_joblib_launcher": ("joblib", "sweep"),
    "hydra_plugins.hydra_submitit_launcher": ("submitit", "sweep"),
    "hydra_plugins.hydra_optuna_sweeper": ("optuna", "sweep"),
}


def _is_group(key: str) -> bool:
    return key == "experiment" or (CONFIG_DIR / key.replace(".", "/")).is_dir()


def _first_values(overrides: list[str]) -> list[str]:
    """The overrides with each sweep (``a=1,2``) replaced by its first value.

    Sweeps without a first value (``interval(...)`` for Optuna) are left out; each job checks
    its own config when it starts.
    """
    plain = []
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise ConfigError(
            f"The command line cannot be parsed as Hydra overrides: {str(error).splitlines()[0]}. Quote values with "
            "spaces, newlines or special characters (key='a value'); see https://hydra.cc/docs/advanced/override_grammar/basic/."
        ) from None
    for override in parsed:
        if not override.is_sweep_override():
            plain.append(override.input_line)
            continue
        try:
            first = next(iter(override.sweep_string_iterator()))
        except Exception:  # a sweep that only a sweeper can sample
            continue
        plain.append(f"{override.get_key_element()}={first}")
    return plain


def compose_job_config(config_name: str, overrides: list[str]) -> DictConfig:
    """The job config as Hydra will compose it, with its ``hydra`` node; ``${hydra:...}`` values
    resolve as in a job whose output directory is ``.`` (the real one exists only once Hydra
    starts the job)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "."
    HydraConfig.instance().set_config(cfg)
    return cfg


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    cfg = compose_job_config(config_name, overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def dotted_keys(values: dict, prefix: str = "") -> list[str]:
    """Every key of the nested dict ``values``, dotted (``trainer.max_steps``), parents first."""
    keys = []
    for name, value in values.items():
        keys.append(f"{prefix}{name}")
        if isinstance(value, dict):
            keys += dotted_keys(value, f"{prefix}{name}.")
    return keys


def _unknown_path_error(base: DictConfig, key: str, item: str) -> ConfigError:
    """The error for the first component of dotted ``key`` that ``base`` lacks.

    Under an instantiable node, an argument its target accepts is named as such, with the
    ``+key=value`` form that adds it; other names get the nearest arguments as suggestions.
    """
    parts, node = key.split("."), base
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node.keys():  # keys() includes ??? values
            valid = list(node.keys()) if isinstance(node, DictConfig) else []
            if isinstance(node, DictConfig) and "_target_" in node:
                arguments = target_arguments(node._target_)
                if part in arguments and depth == len(parts) - 1:
                    return ConfigError(f"'{key}' is an argument of {node._target_} but not in the config; add it with +{item}.")
                valid = sorted(set(valid) | set(arguments))
            nested = dotted_keys(OmegaConf.to_container(base, resolve=False)) if depth == 0 else []
            return unknown_key_error(".".join(parts[: depth + 1]), valid, nested)
        node = node[part]
    return ConfigError(f"Config key '{key}' cannot be set.")


def _has_key(cfg: DictConfig, key: str) -> bool:
    """Whether dotted ``key`` is in ``cfg``, including keys whose value is still ``???``."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():
            return False
        node = node._get_node(part)
    return True


def _explain_composition_error(
    config_name: str, overrides: list[str], error: HydraException, search_path: list[str] = ()
) -> UserInputError:
    """Turn Hydra's composition error into one paragraph naming the bad option or key.

    ``search_path``: the ``hydra.searchpath`` overrides, under which the user's own options are found.
    """
    missing = re.search(r"Could not (?:find|load) '([^']+)'", str(error))  # load: an option inside a list
    if missing:
        group, _, choice = missing.group(1).rpartition("/")
        if group in ("hydra/sweeper", "hydra/launcher"):
            return MissingDependencyError(
                f"{group}={choice} needs a Hydra plugin that is not installed; install the sweep extra: pip install 'lm-framework[sweep]'."
            )
        options = _group_options(group)
        close = difflib.get_close_matches(choice, options, n=1, cutoff=0.5)
        hint = f" Did you mean {group}={close[0]}?" if close else ""
        return ConfigError(f"There is no {group} option '{choice}'.{hint} Options: {', '.join(options)}.")
    groups = [item for item in overrides if _is_group(item.split("=", 1)[0].lstrip("+~"))]
    try:
        base = _compose(config_name, [*groups, *search_path])
    except HydraException:  # a config group the command does not compose (evaluate, generate, ...)
        settings = ", ".join(key for key in _compose(config_name, []).keys())
        return ConfigError(
            f"'{groups[0]}' selects a training config group, which {config_name} does not take; its settings are {settings}."
        )
    for item in overrides:
        key = item.split("=", 1)[0]
        if key.startswith(("+", "~", "hydra")) or _is_group(key) or _has_key(base, key):
            continue
        return _unknown_path_error(base, key, item)
    for item in overrides:
        key, _, value = item.partition("=")
        if isinstance(OmegaConf.select(base, key, default=None), ListConfig) and not value.startswith("["):
            return ConfigError(f"{key} takes a list: write '{key}=[{value}]' (quoted, so the shell leaves the brackets alone).")
    cause = f" ({str(error.__cause__).splitlines()[0]})" if error.__cause__ else ""
    return ConfigError(str(error).splitlines()[0] + cause)


def _check_plugins_installed(hydra: DictConfig) -> None:
    """The launcher and sweeper a config selects, and the packages they run on, must be installed."""
    for group in ("launcher", "sweeper"):
        target = str(hydra[group].get("_target_", ""))
        for plugin, (package, extra) in PLUGINS.items():
            if target.startswith(plugin) and not all(importlib.util.find_spec(name) for name in (plugin, package)):
                raise MissingDependencyError(
                    f"hydra/{group}={hydra.runtime.choices.get(f'hydra/{group}')} needs {plugin.split('.')[1]} and {package}; "
                    f"install the {extra} extra: pip install 'lm-framework[{extra}]'."
                )


def _check_prepared_data_tokenizer(cfg: DictConfig, overrides: list[str]) -> None:
    """A prepared dataset brings its tokenizer: a tokenizer chosen on the command line would be ignored."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig) or not prepared_data(data):
        return
    chosen = [item for item in overrides if re.match(r"[+~]*tokenizer(\.|=)", item)]
    if chosen:
        raise ConfigError(
            f"data=prepared takes its tokenizer from the dataset (tokenizer.json beside its manifest); "
            f"drop {', '.join(chosen)}. To tokenize with another tokenizer, prepare the corpus with it."
        )


def check_command_line(config_name: str, arguments: list[str]) -> None:
    """Check a command's overrides before Hydra runs it (see the module's docstring).

    Arguments with Hydra flags other than ``-m/--multirun`` are left to Hydra (``--help``,
    ``--cfg``, ...). A sweep is checked with each swept key's first value.

    Raises:
        ConfigError: an unknown option or key, a value that cannot be resolved, a tokenizer
            chosen for prepared data, or a training process (a config with ``trainer``) started
            by torchrun or srun without a shared ``hydra.run.dir``.
        MissingDependencyError: a launcher or sweeper whose plugin is not installed.
    """
    if any(argument.startswith("-") and argument not in ("-m", "--multirun") for argument in arguments):
        return
    overrides = [argument for argument in arguments if not argument.startswith("-")]
    multirun = "-m" in arguments or "--multirun" in arguments
    plain = _first_values([item for item in overrides if not item.startswith("hydra")])
    try:
        cfg = compose_job_config(config_name, [*plain, *(item for item in overrides if item.startswith("hydra"))])
    except HydraException as error:
        search_path = [item for item in overrides if item.startswith("hydra.searchpath")]
        raise _explain_composition_error(config_name, plain, error, search_path) from None
    except OmegaConfBaseException as error:
        raise config_error(error) from None
    _check_plugins_installed(cfg.hydra)
    _check_prepared_data_tokenizer(cfg, plain)
    launcher = external_launcher() if "trainer" in cfg else None  # only training processes pick a run directory
    if launcher and not multirun and not any(item.startswith("hydra.run.dir=") for item in overrides):
        raise ConfigError(
            f"This process is one of several started by {launcher}, and each would otherwise pick its own "
            "time-stamped run directory. Give all of them the same one with hydra.run.dir=<dir>, for example "
            "hydra.run.dir=logs/runs/$(date +%Y-%m-%d_%H-%M-%S) on the launching command line."
        )


def refused_input(error: BaseException | None) -> UserInputError | None:
    """The UserInputError ``error`` is, or that Hydra's ``instantiate`` wrapped in it; else None."""
    if isinstance(error, InstantiationException):
        error = error.__cause__
    return error if isinstance(error, UserInputError) else None


@contextlib.contextmanager
def user_errors_exit() -> Iterator[None]:
    """Print a UserInputError as one paragraph on stderr and exit with status 2, no traceback.

    Also when Hydra's ``instantiate`` wrapped it (a constructor that checks its arguments).
    """
    try:
        yield
    except (UserInputError, InstantiationException) as error:
        cause = refused_input(error)
        if cause is None:
            raise
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(str(cause))}", highlight=False)
        sys.exit(USER_ERROR_STATUS)


def run_command(main, config_name: str) -> None:
    """Print the command's help when asked (``-h``, ``--help``); else check the command line
    (:func:`check_command_line`), then run the Hydra ``main``."""
    from framework.cli.usage import print_help_if_asked

    if print_help_if_asked(config_name, sys.argv[1:]):
        return
    with user_errors_exit():
        check_command_line(config_name, sys.argv[1:])
    main()
