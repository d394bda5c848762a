"""Progress lines for output that is not a terminal (framework.callbacks.progress_log)."""

import io

from framework.callbacks import ProgressLog, StepProgressBar, step_progress
from framework.callbacks.progress_log import progress_line


def test_a_progress_line_gives_step_loss_validation_throughput_elapsed_time_and_eta():
    metrics = {"train/loss": 2.14321, "val/loss": 2.20014, "perf/tokens_per_sec": 18200.4, "lr/decay": 1e-3}
    line = progress_line(step=400, total_steps=2000, elapsed_s=21.0, steps_done=400, metrics=metrics)
    assert line == "step 400/2000 (20%) | loss 2.1432 | val/loss 2.2001 | 18,200 tokens/s | elapsed 0:00:21 | ETA 0:01:24"


def test_a_resumed_run_estimates_the_remaining_time_from_this_attempts_steps():
    line = progress_line(step=1500, total_steps=2000, elapsed_s=50.0, steps_done=500, metrics={})
    assert line == "step 1500/2000 (75%) | elapsed 0:00:50 | ETA 0:00:50"
    assert progress_line(step=0, total_steps=10, elapsed_s=0.0, steps_done=0, metrics={}).endswith("ETA ?")


def test_the_bar_is_for_terminals_and_the_log_for_everything_else(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    log = step_progress(refresh_rate=4, log_every_s=12.5)
    assert isinstance(log, ProgressLog) and log.log_every_s == 12.5
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdout", terminal)
    bar = step_progress(refresh_rate=2, log_every_s=12.5)
    assert isinstance(bar, StepProgressBar) and bar.refresh_rate == 2
