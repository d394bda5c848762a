"""What the commands on a finished run (evaluate, generate, predict, export) share: a typed
config per command, registered with Hydra's ConfigStore, and the checks before it runs."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from framework.cli.precheck import run_command
from framework.cli.process import configure_process


def register_schema(name: str, schema: type, open_keys: tuple[str, ...] = ()) -> None:
    """Register ``schema`` (a dataclass) as ``<name>_schema``, which ``conf/<name>.yaml`` builds on.

    ``open_keys`` name mappings that take any key (``data`` of evaluate: overrides of the run's
    data config, given as ``data.path=...`` without Hydra's ``+``).
    """
    node = OmegaConf.structured(schema)
    for key in open_keys:
        OmegaConf.set_struct(node[key], False)
    ConfigStore.instance().store(name=f"{name}_schema", node=node)


def run_finished_run_command(main, name: str, schema: type, open_keys: tuple[str, ...] = ()) -> None:
    """Set up the process, register the command's schema, check the command line and run the Hydra ``main``."""
    configure_process()
    register_schema(name, schema, open_keys)
    run_command(main, name)
