"""Shared fixtures: the real datasets in ../shared/data and composed configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"


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


@pytest.fixture
def make_config(tmp_path: Path):
    """Compose ``conf/train.yaml`` with overrides, all run paths inside ``tmp_path``."""

    def _make(overrides: list[str] = ()) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides))
        with open_dict(cfg):
            cfg.paths.root_dir = str(tmp_path)
            cfg.paths.run_dir = str(tmp_path / "run")
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    return _make
