"""Training progress for output that is not a terminal (SLURM, nohup, ``> log``): a log line every
``log_every_s`` seconds and after each validation, and :func:`step_progress`, which picks it or
the rich bar."""

from __future__ import annotations

import datetime
import logging
import math
import sys
import time
from collections.abc import Mapping

from pytorch_lightning.callbacks import ProgressBar

from framework.callbacks.progress_bar import StepProgressBar

log = logging.getLogger("framework.progress")

# Validation metrics a progress line shows when they were just computed, in this order.
VALIDATION_METRICS = ("val/loss", "val/acc")


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds))) if math.isfinite(seconds) else "?"


def progress_line(step: int, total_steps: int, elapsed_s: float, steps_done: int, metrics: Mapping[str, float]) -> str:
    """One progress line, e.g. ``step 400/2000 (20%) | loss 2.1432 | val/loss 2.2001 | 18,200 tokens/s | elapsed 0:00:21 | ETA 0:01:24``.

    Args:
        step: optimizer steps taken.
        total_steps: optimizer steps the run takes in all.
        elapsed_s: wall-clock seconds since this attempt's training started.
        steps_done: optimizer steps taken in those seconds (a resumed run starts above 0), for the ETA.
        metrics: the logged values; ``train/loss``, ``perf/tokens_per_sec`` and the
            :data:`VALIDATION_METRICS` present are shown.
    """
    parts = [f"step {step}/{total_steps} ({100 * step / max(total_steps, 1):.0f}%)"]
    if "train/loss" in metrics:
        parts.append(f"loss {metrics['train/loss']:.4f}")
    parts += [f"{name} {metrics[name]:.4f}" for name in VALIDATION_METRICS if name in metrics]
    if "perf/tokens_per_sec" in metrics:
        parts.append(f"{metrics['perf/tokens_per_sec']:,.0f} tokens/s")
    remaining = (total_steps - step) * elapsed_s / steps_done if steps_done > 0 else math.nan
    parts += [f"elapsed {_duration(elapsed_s)}", f"ETA {_duration(remaining)}"]
    return " | ".join(parts)


class ProgressLog(ProgressBar):
    """Lightning's progress bar slot filled with log lines (:func:`progress_line`) on the logger
    ``framework.progress`` (the console and ``train.log``): every ``log_every_s`` seconds of
    training and after each validation (which includes the last step). Only the first process logs.

    Args:
        log_every_s: seconds between two lines while training (0: a line at every step).
    """

    def __init__(self, log_every_s: float = 30.0) -> None:
        super().__init__()
        self.log_every_s = log_every_s
        self._enabled = True
        self._started = 0.0  # time.monotonic() at the start of training
        self._first_step = 0
        self._last_line = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = self._last_line = time.monotonic()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.log_every_s:
            self._log(trainer, now, validation=False)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._log(trainer, time.monotonic(), validation=True)

    def _log(self, trainer, now: float, validation: bool) -> None:
        if not self._enabled:
            return
        self._last_line = now
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1}
        if not validation:
            metrics = {name: value for name, value in metrics.items() if name not in VALIDATION_METRICS}
        total = int(trainer.estimated_stepping_batches)
        log.info(progress_line(trainer.global_step, total, now - self._started, trainer.global_step - self._first_step, metrics))


def step_progress(refresh_rate: int = 4, log_every_s: float = 30.0) -> ProgressBar:
    """The progress display for this process's output: :class:`StepProgressBar` (redrawn
    ``refresh_rate`` times a second) when stdout is a terminal, else :class:`ProgressLog`
    (a line every ``log_every_s`` seconds and after each validation)."""
    if sys.stdout.isatty():
        return StepProgressBar(refresh_rate=refresh_rate)
    return ProgressLog(log_every_s=log_every_s)
