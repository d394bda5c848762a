"""Command-line handling shared by the entry points: checks before Hydra starts, and errors.

Hydra refuses an unknown override key with its own message and writes ``.hydra/`` into the run
directory before our code runs. :func:`check_command_line` composes and validates the config
first, so a typo gets a suggestion and an existing run directory is never touched by a
command that is going to fail.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

from framework.checkpointing import RESUME_MODES, resume_checkpoint
from framework.errors import ConfigError, UserInputError
from framework.schema import target_arguments, unknown_key_error, validate_config
from framework.strategy.launch import external_launcher, launch_rank

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def _is_group(key: str) -> bool:
    return key == "experiment" or (CONFIG_DIR / key.replace(".", "/")).is_dir()


def _first_values(overrides: list[str]) -> list[str]:
    """The overrides with each sweep (``a=1,2``) replaced by its first value.

    Sweeps without a first value (``interval(...)`` for Optuna) are left out; each job checks
    its own config when it starts.
    """
    plain = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            plain.append(override.input_line)
            continue
        try:
            first = next(iter(override.sweep_string_iterator()))
        except Exception:  # a sweep that only a sweeper can sample
            continue
        plain.append(f"{override.get_key_element()}={first}")
    return plain


def _compose(overrides: list[str]) -> DictConfig:
    """The job config as Hydra will compose it; ``${hydra:...}`` values resolve as in a job whose
    output directory is ``.`` (the real one exists only once Hydra starts the job)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "."
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
    return cfg


def _group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


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
                    return ConfigError(
                        f"'{key}' is an argument of {node._target_} but not in the config; add it with +{item}."
                    )
                valid = sorted(set(valid) | set(arguments))
            return unknown_key_error(".".join(parts[: depth + 1]), valid)
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


def _explain_composition_error(overrides: list[str], error: HydraException) -> ConfigError:
    """Turn Hydra's composition error into one paragraph naming the bad option or key."""
    missing = re.search(r"Could not find '([^']+)'", str(error))
    if missing:
        group, _, choice = missing.group(1).rpartition("/")
        options = _group_options(group)
        close = difflib.get_close_matches(choice, options, n=1, cutoff=0.5)
        hint = f" Did you mean {group}={close[0]}?" if close else ""
        return ConfigError(f"There is no {group} option '{choice}'.{hint} Options: {', '.join(options)}.")
    base = _compose([item for item in overrides if _is_group(item.split("=", 1)[0].lstrip("+~"))])
    for item in overrides:
        key = item.split("=", 1)[0]
        if key.startswith(("+", "~", "hydra")) or _is_group(key) or _has_key(base, key):
            continue
        return _unknown_path_error(base, key, item)
    return ConfigError(str(error).splitlines()[0])


def check_command_line(arguments: list[str]) -> list[str]:
    """Validate the training command's overrides before Hydra runs; return the arguments to run.

    ``resume=<run_dir>`` becomes ``hydra.run.dir=<run_dir>`` too, so the resumed run writes into
    the directory it continues. Arguments with Hydra flags other than ``-m/--multirun`` are
    left to Hydra (``--help``, ``--cfg``, ...).

    Raises:
        UserInputError: an unknown key, a wrong type, a broken rule, a missing resume directory.
    """
    if any(argument.startswith("-") and argument not in ("-m", "--multirun") for argument in arguments):
        return arguments
    overrides = [argument for argument in arguments if not argument.startswith("-")]
    multirun = "-m" in arguments or "--multirun" in arguments
    job_overrides = [item for item in overrides if not item.startswith("hydra")]
    plain = _first_values(job_overrides)
    try:
        cfg = _compose(plain)
    except HydraException as error:
        raise _explain_composition_error(plain, error) from None
    validate_config(cfg)
    run_dirs = [item.split("=", 1)[1].strip("\"'") for item in overrides if item.startswith("hydra.run.dir=")]
    if cfg.resume not in RESUME_MODES:
        run_dir = Path(cfg.resume).expanduser()
        if not (run_dir / "checkpoints" / "last.ckpt").exists():
            raise ConfigError(f"resume={cfg.resume}: {run_dir}/checkpoints/last.ckpt does not exist, so there is nothing to resume.")
        if not run_dirs:
            arguments, run_dirs = [*arguments, f"hydra.run.dir={run_dir.resolve()}"], [str(run_dir)]
    launcher = external_launcher()
    if launcher and not run_dirs and not multirun:
        raise ConfigError(
            f"This process is one of several started by {launcher}, and each would otherwise pick its own "
            "time-stamped run directory. Give all of them the same one with hydra.run.dir=<dir>, for example "
            "hydra.run.dir=logs/runs/$(date +%Y-%m-%d_%H-%M-%S) on the launching command line."
        )
    if run_dirs and not multirun:
        arguments = _protect_existing_run_dir(Path(run_dirs[-1]).expanduser(), cfg.resume, arguments)
    return arguments


def _protect_existing_run_dir(run_dir: Path, resume: str, arguments: list[str]) -> list[str]:
    """Refuse ``resume=never`` over a checkpoint; keep an existing ``.hydra/`` from being overwritten.

    A later attempt in the same run directory writes its Hydra files to
    ``.hydra/attempt-<time>/`` instead, so the first attempt's ``.hydra/config.yaml`` stays.
    """
    if resume == "never":
        resume_checkpoint(resume, run_dir)  # refuses a directory that holds a checkpoint
    if (run_dir / ".hydra").is_dir() and not any(item.startswith("hydra.output_subdir=") for item in arguments):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        arguments = [*arguments, f"hydra.output_subdir=.hydra/attempt-{stamp}"]
    return arguments


@contextlib.contextmanager
def user_errors_exit() -> Iterator[None]:
    """Print a UserInputError as one paragraph on stderr and exit with status 2, no traceback.

    Also when Hydra's ``instantiate`` wrapped it (a constructor that checks its arguments).
    """
    try:
        yield
    except (UserInputError, InstantiationException) as error:
        cause = error if isinstance(error, UserInputError) else error.__cause__
        if not isinstance(cause, UserInputError):
            raise
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {cause}", highlight=False)
        sys.exit(2)


def quiet_logging() -> None:
    """Keep only warnings, on the console: for processes other than rank 0 that Hydra set up
    for full logging anyway (submitit's tasks each run the whole Hydra job)."""
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for handler in [handler for handler in root.handlers if isinstance(handler, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


def quiet_other_ranks(arguments: list[str]) -> list[str]:
    """On a process other than rank 0: no Hydra files and no log file, warnings on the console."""
    if launch_rank() == 0:
        return arguments
    extra = ["hydra/job_logging=other_ranks"]
    if not any(item.startswith("hydra.output_subdir=") for item in arguments):
        extra.append("hydra.output_subdir=null")
    return [*arguments, *extra]


def run(main, arguments: list[str] | None = None) -> None:
    """Check the command line, then call the Hydra ``main`` with it."""
    arguments = quiet_other_ranks(sys.argv[1:] if arguments is None else arguments)
    with user_errors_exit():
        sys.argv = [sys.argv[0], *check_command_line(arguments)]
    main()
