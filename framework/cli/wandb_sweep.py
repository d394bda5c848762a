"""Turn an Optuna search config into a W&B sweep: ``lmf-wandb-sweep optuna`` or ``python -m framework.wandb_sweep optuna``.

Reads ``conf/hparams_search/<name>.yaml`` (or a path to such a file) and writes a W&B sweep
YAML with the same metric, direction, trial budget and search space, and a ``command`` that
calls this project's Hydra app with W&B's ``${args_no_hyphens}`` (``key=value`` pairs, which
are Hydra overrides). Then ``wandb sweep sweep.yaml`` and ``wandb agent <id>`` drive the same
search from the W&B server.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

from framework.cli.precheck import CONFIG_DIR, user_errors_exit
from framework.cli.usage import epilog
from framework.errors import ConfigError, MissingInputError
from framework.tasks import METRIC_DIRECTIONS

COMMAND = ["${env}", "${interpreter}", "-m", "framework.train", "${args_no_hyphens}"]


def parameter_spec(key: str, expression: str) -> dict[str, Any]:
    """The W&B parameter for one Optuna search-space entry (``choice``, ``range``, ``interval``).

    Raises:
        ConfigError: an expression that is not one of those sweeps.
    """
    value = OverridesParser.create().parse_override(f"{key}={expression}").value()
    if isinstance(value, ChoiceSweep):
        return {"values": list(value.list)}
    if isinstance(value, RangeSweep):
        return {"values": list(range(int(value.start), int(value.stop), int(value.step or 1)))}
    if isinstance(value, IntervalSweep):
        integer = isinstance(value.start, int) and isinstance(value.end, int)
        if "log" in value.tags:
            distribution = "q_log_uniform_values" if integer else "log_uniform_values"
        else:
            distribution = "int_uniform" if integer else "uniform"
        return {"distribution": distribution, "min": value.start, "max": value.end}
    raise ConfigError(f"hydra.sweeper.params.{key}={expression!r} is not a choice, range or interval sweep.")


def to_wandb_sweep(search: dict[str, Any]) -> dict[str, Any]:
    """The W&B sweep config equivalent to a ``conf/hparams_search`` file's contents."""
    sweeper = search["hydra"]["sweeper"]
    sampler = str(sweeper.get("sampler", {}).get("_target_", "tpe")).lower()
    method = "random" if "random" in sampler else "grid" if "grid" in sampler else "bayes"
    metric = search.get("optimized_metric", "val/loss")
    goal = str(sweeper.get("direction", "minimize"))
    if "${" in goal:  # the direction follows the metric (conf/hparams_search/optuna.yaml)
        goal = "maximize" if METRIC_DIRECTIONS.get(metric) == "max" else "minimize"
    return {
        "method": method,
        "metric": {"name": metric, "goal": goal},
        "parameters": {key: parameter_spec(key, str(expression)) for key, expression in sweeper["params"].items()},
        "run_cap": sweeper.get("n_trials"),
        "command": COMMAND,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``lmf-wandb-sweep`` (its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m framework.wandb_sweep",
        description=__doc__.splitlines()[0],
        epilog=epilog("wandb-sweep", ("python -m framework.wandb_sweep optuna --out sweep.yaml", "wandb sweep sweep.yaml")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("search", help="a conf/hparams_search name (e.g. optuna) or a path to such a YAML file")
    parser.add_argument("--out", type=Path, default=Path("wandb_sweep.yaml"), help="where to write (default wandb_sweep.yaml)")
    return parser


def main(arguments: list[str] | None = None) -> None:
    """The console script ``lmf-wandb-sweep``: parse arguments and write the sweep YAML."""
    options = build_parser().parse_args(arguments)
    with user_errors_exit():
        path = Path(options.search)
        if not path.is_file():
            path = CONFIG_DIR / "hparams_search" / f"{options.search}.yaml"
        if not path.is_file():
            raise MissingInputError(f"{options.search} is neither a file nor a config in {CONFIG_DIR / 'hparams_search'}.")
        sweep = to_wandb_sweep(yaml.safe_load(path.read_text()))
    options.out.write_text(yaml.safe_dump(sweep, sort_keys=False))
    print(f"Wrote {options.out}. Next: wandb sweep {options.out}, then wandb agent <sweep id>.")
