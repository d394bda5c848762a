"""Shared fixtures and helpers: the real datasets in ../shared/data, composed configs, and
commands run as a user runs them (``python -m framework.<command>`` in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from framework.cli.precheck import check_command_line
from framework.cli.process import configure_process
from framework.run.schema import validate_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"


@pytest.fixture(scope="session", autouse=True)
def process_set_up():
    """What every entry point sets up: warning filters and the config resolvers."""
    configure_process()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets: ``$LM_FRAMEWORK_SHARED_DATA`` or ``<project>/../shared/data``."""
    path = Path(os.environ.get("LM_FRAMEWORK_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not (path / "tinyshakespeare" / "input.txt").is_file():
        pytest.fail(
            f"Test data not found at {path}: expected tinyshakespeare/input.txt there. Place the "
            "shared data folder beside the project, or set LM_FRAMEWORK_SHARED_DATA to its path.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def shakespeare_path(shared_data: Path) -> Path:
    """Tiny Shakespeare's ``input.txt`` (1,115,394 characters)."""
    return shared_data / "tinyshakespeare" / "input.txt"


@pytest.fixture(scope="session")
def harness_cache(tmp_path_factory) -> Path:
    """One cache folder for every test that builds the shipped harness tasks (built once)."""
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture(scope="session")
def harness_settings(shakespeare_path, harness_cache):
    """``harness_settings(tasks, **others)``: :class:`HarnessSettings` reading Tiny Shakespeare
    from the shared data, the shipped tasks built in :func:`harness_cache`."""
    from framework.harness.evaluation import HarnessSettings

    return lambda tasks, **others: HarnessSettings(
        tasks=list(tasks), **{"shakespeare": str(shakespeare_path), "cache_dir": str(harness_cache), **others}
    )


def compose_train_config(overrides: list[str] = (), root: Path | None = None) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides``; with ``root``, every run path inside it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    if root is not None:
        with open_dict(cfg):
            cfg.paths.root_dir = str(root)
            cfg.paths.run_dir = str(root / "run")
            cfg.paths.cache_dir = str(root / "cache")
    return cfg


def compose_prepare_config(overrides: list[str], root: Path) -> DictConfig:
    """``conf/prepare.yaml`` composed with ``overrides``, its paths inside ``root``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="prepare", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.root_dir = str(root)
        cfg.paths.log_dir = str(root / "logs")
        cfg.paths.run_dir = str(root)
        cfg.paths.cache_dir = str(root / "cache")
    return cfg


@pytest.fixture(scope="session")
def prepare_config():
    """:func:`compose_prepare_config`, for fixtures of any scope."""
    return compose_prepare_config


@pytest.fixture(scope="session")
def unigram_entropy():
    """``unigram_entropy(tokens)``: the entropy in nats of the frequency distribution of ``tokens``
    (a 1-D integer array): the loss of the best model that ignores context."""

    def entropy(tokens) -> float:
        probabilities = np.bincount(np.asarray(tokens)) / len(tokens)
        probabilities = probabilities[probabilities > 0]
        return float(-(probabilities * np.log(probabilities)).sum())

    return entropy


@pytest.fixture(scope="session")
def compose_config():
    """:func:`compose_train_config`, for fixtures of any scope."""
    return compose_train_config


@pytest.fixture
def make_config(tmp_path: Path):
    """Compose ``conf/train.yaml`` with overrides, all run paths inside ``tmp_path``."""
    return lambda overrides=(): compose_train_config(overrides, tmp_path)


@pytest.fixture
def checked_config(tmp_path: Path):
    """``checked_config(overrides)``: what the training command checks before any data is read
    (the command line, then the composed config); returns the config or raises the error."""

    def check(overrides: list[str]) -> DictConfig:
        check_command_line("train", list(overrides))
        cfg = compose_train_config(overrides, tmp_path)
        validate_config(cfg)
        return cfg

    return check


@pytest.fixture(scope="session")
def run_module():
    """``run_module(module, *args, cwd, env=None, timeout=600)``: ``python -m <module> <args>`` in
    a subprocess, started in ``cwd``, with this project importable, W&B offline and a wide
    console; returns the ``CompletedProcess`` (text output captured)."""

    def run(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WANDB_MODE": "offline", "COLUMNS": "250", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
        )

    return run
