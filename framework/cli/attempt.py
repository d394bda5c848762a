"""What an attempt of a training run leaves behind when its input is refused: nothing new."""

from __future__ import annotations

import datetime
import logging
import shutil
from pathlib import Path

from framework.cli.precheck import refused_input


class AttemptFiles:
    """Removes what this attempt wrote into the run directory if it is refused for bad input.

    Hydra creates the run directory, its Hydra files (``.hydra/``, or ``.hydra/attempt-<time>/``
    when the directory already has them) and ``train.log`` before the job starts. When the input
    is refused before training starts (``run.json`` not written by this attempt), a directory
    that held nothing else was made by this attempt and is removed whole; in a run directory
    that existed (a resume that fails), only this attempt's Hydra files go, the error is
    appended to ``train.log``, and nothing else of the run is touched. Failures once training
    has started (a diverged loss, a crash) leave everything for inspection.

    Args:
        run_dir: the job's output directory.
        hydra_subdir: where Hydra wrote this attempt's files inside it (None: none, as on
            processes other than rank 0, which then do nothing here).
    """

    def __init__(self, run_dir: Path, hydra_subdir: str | None) -> None:
        self.run_dir, self.hydra_subdir = run_dir, hydra_subdir
        self.new = hydra_subdir == ".hydra" and {path.name for path in run_dir.iterdir()} <= {".hydra", "train.log"}
        self.record_before = self._record_state()

    def _record_state(self) -> tuple[int, int] | None:
        """``run.json``'s modification time and size: training writes it when it starts."""
        record = self.run_dir / "run.json"
        return (record.stat().st_mtime_ns, record.stat().st_size) if record.exists() else None

    def __enter__(self) -> AttemptFiles:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        refused = refused_input(error)
        if refused is None or self.hydra_subdir is None or self._record_state() != self.record_before:
            return False  # not refused input, not rank 0, or training had started: everything stays
        self._close_log_files()
        if self.new:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return False
        shutil.rmtree(self.run_dir / self.hydra_subdir, ignore_errors=True)
        stamp = datetime.datetime.now().isoformat(sep=" ", timespec="milliseconds")
        with (self.run_dir / "train.log").open("a") as file:
            file.write(f"[{stamp}][framework][ERROR] - This attempt was refused and changed nothing else: {refused}\n")
        return False

    def _close_log_files(self) -> None:
        """Close the log files Hydra opened in the run directory, so they can be removed or appended to."""
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == self.run_dir.resolve():
                root.removeHandler(handler)
                handler.close()
