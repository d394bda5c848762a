"""Command-line handling shared by the entry points: checks before Hydra starts, and errors.

Hydra refuses an unknown override key with its own message and writes ``.hydra/`` into the run
directory before our code runs. :func:`check_command_line` composes and validates the config
first, so a typo gets a suggestion and an existing run directory is never touched by a
command that is going to fail.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

from framework.checkpointing import RESUME_MODES
from framework.errors import ConfigError, UserInputError
from framework.schema import unknown_key_error, validate_config

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
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):  # ${hydra:...} only resolves inside a Hydra job; paths are plain strings
        for key in cfg.paths:
            cfg.paths[key] = "."
    return cfg


def _explain_composition_error(overrides: list[str], error: HydraException) -> ConfigError:
    """Name the override key that does not exist, with the nearest valid keys."""
    groups = [item for item in overrides if _is_group(item.split("=", 1)[0].lstrip("+~"))]
    base = _compose(groups)
    for item in overrides:
        key = item.split("=", 1)[0]
        if key.startswith(("+", "~", "hydra")) or _is_group(key) or OmegaConf.select(base, key, default=KeyError) is not KeyError:
            continue
        parent, _, _ = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        valid = list(node.keys()) if isinstance(node, DictConfig) else []
        return unknown_key_error(key, valid)
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
    job_overrides = [item for item in overrides if not item.startswith("hydra")]
    plain = _first_values(job_overrides)
    try:
        cfg = _compose(plain)
    except HydraException as error:
        raise _explain_composition_error(plain, error) from None
    validate_config(cfg)
    if cfg.resume not in RESUME_MODES:
        run_dir = Path(cfg.resume).expanduser()
        if not (run_dir / "checkpoints" / "last.ckpt").is_file():
            raise ConfigError(f"resume={cfg.resume}: {run_dir}/checkpoints/last.ckpt does not exist, so there is nothing to resume.")
        if not any(item.startswith("hydra.run.dir=") for item in overrides):
            arguments = [*arguments, f"hydra.run.dir={run_dir.resolve()}"]
    return arguments


@contextlib.contextmanager
def user_errors_exit() -> Iterator[None]:
    """Print a UserInputError as one paragraph on stderr and exit with status 2, no traceback."""
    try:
        yield
    except UserInputError as error:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {error}", highlight=False)
        sys.exit(2)


def run(main, arguments: list[str] | None = None) -> None:
    """Check the command line, then call the Hydra ``main`` with it."""
    arguments = sys.argv[1:] if arguments is None else arguments
    with user_errors_exit():
        sys.argv = [sys.argv[0], *check_command_line(arguments)]
    main()
