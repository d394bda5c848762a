"""What a refused attempt leaves in its run directory (framework.cli.attempt.AttemptFiles)."""

import json
import logging
from pathlib import Path

import pytest

from framework.cli.attempt import AttemptFiles
from framework.errors import ConfigError, TrainingDivergedError


def hydra_files(run_dir: Path, subdir: str) -> None:
    """What Hydra writes before the job starts: its config files and the log file."""
    (run_dir / subdir).mkdir(parents=True)
    (run_dir / subdir / "config.yaml").write_text("seed: 1\n")
    (run_dir / "train.log").touch()


def test_a_refused_new_run_removes_its_directory_and_closes_its_log(tmp_path):
    run_dir = tmp_path / "run"
    hydra_files(run_dir, ".hydra")
    handler = logging.FileHandler(run_dir / "train.log")
    logging.getLogger().addHandler(handler)
    with pytest.raises(ConfigError), AttemptFiles(run_dir, ".hydra"):
        raise ConfigError("model.n_layer='four' has the wrong type")
    assert not run_dir.exists() and handler not in logging.getLogger().handlers and handler.stream is None


def test_a_refused_resume_removes_only_its_own_hydra_files_and_logs_the_error(tmp_path):
    run_dir = tmp_path / "run"
    hydra_files(run_dir, ".hydra")
    (run_dir / "run.json").write_text('{"status": "finished"}')
    (run_dir / "train.log").write_text("the first attempt\n")
    (run_dir / ".hydra" / "attempt-1").mkdir()
    with pytest.raises(ConfigError), AttemptFiles(run_dir, ".hydra/attempt-1"):
        raise ConfigError("model.n_embd: parameter(s) differ")
    assert sorted(path.name for path in run_dir.rglob("*")) == [".hydra", "config.yaml", "run.json", "train.log"]
    first, error = (run_dir / "train.log").read_text().splitlines()
    assert first == "the first attempt" and error.endswith(
        "This attempt was refused and changed nothing else: model.n_embd: parameter(s) differ"
    )


def test_a_run_that_started_and_diverged_keeps_everything(tmp_path):
    run_dir = tmp_path / "run"
    hydra_files(run_dir, ".hydra")
    with pytest.raises(TrainingDivergedError), AttemptFiles(run_dir, ".hydra"):
        (run_dir / "run.json").write_text(json.dumps({"status": "failed"}))  # training writes run.json when it starts
        raise TrainingDivergedError("The training loss became nan at optimizer step 3.")
    assert sorted(path.name for path in run_dir.rglob("*")) == [".hydra", "config.yaml", "run.json", "train.log"]


def test_other_errors_and_other_ranks_leave_everything(tmp_path):
    run_dir = tmp_path / "run"
    hydra_files(run_dir, ".hydra")
    with pytest.raises(RuntimeError), AttemptFiles(run_dir, ".hydra"):
        raise RuntimeError("a crash, kept for inspection")
    with pytest.raises(ConfigError), AttemptFiles(run_dir, None):  # a process other than rank 0
        raise ConfigError("refused")
    assert sorted(path.name for path in run_dir.rglob("*")) == [".hydra", "config.yaml", "train.log"]
