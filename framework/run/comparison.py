"""Comparing finished runs offline (``lmf-compare``).

Reads each run's ``run.json`` and ``metrics.csv`` (so it works whichever logger was used) and
prints one row per run: the config keys that differ between the runs, then the final and best
values of the metrics, the parameter count and the wall time. ``--csv``/``--markdown`` write
the table; ``--plot`` draws chosen metrics (training and validation loss unless told) against
the optimizer step, one line per run; ``framework.run.comparison_html`` writes both as one page.
"""

from __future__ import annotations

import csv
import datetime
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.checkpointing.resume import flatten
from framework.errors import ConfigError, MissingDependencyError, MissingInputError
from framework.run.record import read_record
from framework.tasks import METRIC_DIRECTIONS

# Keys that differ between any two runs without describing the experiment.
RUN_SPECIFIC_KEYS = (
    "paths.",
    "logger.wandb.save_dir",
    "callbacks.model_checkpoint.dirpath",
    "callbacks.downstream.tokenizer",
    "trainer.default_root_dir",
    "resume",
)
REPORTED_METRICS = ("val/loss", "val/ppl", "val/bpc", "val/bpb", "val/acc", "val/f1", "val/auroc", "perf/tokens_per_sec", "perf/mfu")
# The columns besides the sort metric that a terminal-wide table shows.
COMPACT_METRICS = ("val/loss", "val/acc", "perf/tokens_per_sec")
COMPACT_NAMES = {"perf/tokens_per_sec": "tokens/s"}
RUN_NAME_WIDTH = 16  # characters a line of a run's name in the compact table
SWEEP_JOB = re.compile(r"^(\d+)_")  # Hydra's job folders: <job number>_<overrides>
# What compare plots unless --metric says otherwise: training and validation loss side by side.
DEFAULT_PLOT_METRICS = ("train/loss", "val/loss")
# Metrics where higher is better; the others are best when lowest.
HIGHER_IS_BETTER = {name for name, direction in METRIC_DIRECTIONS.items() if direction == "max"} | {"perf/tokens_per_sec", "perf/mfu"}


@dataclass
class Run:
    """One finished run as the comparison sees it."""

    directory: Path
    config: dict[str, Any]
    history: list[dict[str, str]]
    parameters: int | None
    wall_seconds: float | None
    choices: dict[str, str]  # the option of each config group, e.g. {"model": "lstm"} (run.json, or its command line)
    overridden: set[str]  # the dotted keys set on the command line

    def value(self, key: str) -> Any:
        """The config value of ``key``, or the option chosen for the group ``key``."""
        return self.config[key] if key in self.config else self.choices.get(key)

    def series(self, metric: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every logged value of ``metric``, in step order."""
        points = [(int(row["step"]), float(row[metric])) for row in self.history if row.get(metric)]
        return sorted(points)

    def final(self, metric: str) -> float:
        points = self.series(metric)
        return points[-1][1] if points else math.nan

    def best(self, metric: str) -> float:
        values = [value for _, value in self.series(metric) if math.isfinite(value)]
        return (max(values) if metric in HIGHER_IS_BETTER else min(values)) if values else math.nan


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run directory (one holding ``run.json``) given, or directly inside a given sweep directory.

    Raises:
        MissingInputError: a path that is neither, or no run at all.
    """
    directories: list[Path] = []
    for path in paths:
        if (path / "run.json").is_file():
            directories.append(path)
        elif path.is_dir() and any((child / "run.json").is_file() for child in path.iterdir()):
            directories.extend(sorted(child for child in path.iterdir() if (child / "run.json").is_file()))
        else:
            raise MissingInputError(f"{path} is neither a run directory (with run.json) nor a sweep directory of runs.")
    return [_load(directory) for directory in directories]


def _load(directory: Path) -> Run:
    record = read_record(directory)
    metrics_file = directory / "metrics.csv"
    history = list(csv.DictReader(metrics_file.open(newline=""))) if metrics_file.exists() else []
    wall = None
    if record.get("ended_at"):
        wall = (datetime.datetime.fromisoformat(record["ended_at"]) - datetime.datetime.fromisoformat(record["started_at"])).total_seconds()
    config = flatten(record["config"])
    overrides = [item.split("=", 1) for item in record.get("overrides", []) if "=" in item]
    if "choices" in record:
        choices = {group: _option(option) for group, option in record["choices"].items()}
    else:  # a record without them: the options chosen on the command line
        choices = {key.lstrip("+~"): value for key, value in overrides if "." not in key and key.lstrip("+~") not in config}
    overridden = {key.lstrip("+~") for key, _ in overrides if "." in key}
    return Run(directory, config, history, record.get("parameters"), wall, choices, overridden)


def _option(option: str | list[str] | None) -> str:
    """A group's option as a command line writes it: ``gpt``, ``null``, ``[clean,length]``."""
    if isinstance(option, list):
        return "[" + ",".join(option) + "]"
    return "null" if option is None else str(option)


def differing_keys(runs: list[Run], command_line_only: bool = False) -> list[str]:
    """What differs between the runs: the config groups whose option differs (``model`` for
    ``model=gpt,lstm``; groups some run's record does not name are left out), then the config
    keys whose values differ, run-specific paths left out, and keys inside such a group left out
    unless set on the command line; ``command_line_only``: only the keys set on some run's
    command line."""
    groups = sorted(set.intersection(*(set(run.choices) for run in runs)))  # known for every run
    groups = [group for group in groups if len({run.choices[group] for run in runs}) > 1]
    overridden = set().union(*(run.overridden for run in runs))
    keys = sorted({key for run in runs for key in run.config})
    varying = [key for key in keys if not key.startswith(RUN_SPECIFIC_KEYS) and len({repr(run.config.get(key)) for run in runs}) > 1]
    if command_line_only:
        return groups + [key for key in varying if key in overridden]
    return groups + [key for key in varying if key in overridden or not key.startswith(tuple(f"{group}." for group in groups))]


def comparison_rows(runs: list[Run], sort_by: str, wide: bool = True) -> tuple[list[str], list[list[str]]]:
    """The header and one row of strings per run, best final value of ``sort_by`` first.

    Raises:
        ConfigError: no run logged ``sort_by``.

    ``wide``: the run's directory name, the final and best value of every reported metric the
    runs logged, the parameter count and the wall time. Otherwise the columns an 80-character
    terminal holds: the run (its job number when the runs are the jobs of one sweep, whose
    swept values the next columns give), the keys that vary, the final and best ``sort_by``,
    the final value of the other losses and accuracies (the ``val/*`` metrics other than
    perplexity and bits), tokens/s and the wall time. The keys that vary are, in the compact
    table, those set on a command line (all that vary when none is); :func:`fit_width` then
    drops the last of them that a terminal cannot hold.
    """
    if not any(run.series(sort_by) for run in runs):
        logged = sorted({name for run in runs for row in run.history for name, value in row.items() if value and name != "step"})
        raise ConfigError(f"--sort {sort_by}: none of the runs logged that metric; they logged {', '.join(logged) or 'nothing'}.")
    varying = differing_keys(runs) if wide else differing_keys(runs, command_line_only=True) or differing_keys(runs)
    metrics = [metric for metric in REPORTED_METRICS if any(run.series(metric) for run in runs)]
    if wide:
        columns = [(kind, metric) for metric in metrics for kind in ("final", "best")]
    else:
        others = [metric for metric in metrics if metric != sort_by and metric in COMPACT_METRICS]
        columns = [("final", sort_by), ("best", sort_by), *(("final", metric) for metric in others)]
    jobs = not wide and len({run.directory.parent for run in runs}) == 1 and all(SWEEP_JOB.match(run.directory.name) for run in runs)
    header = [
        "job" if jobs else "run",
        *varying,
        *(f"{kind} {COMPACT_NAMES.get(metric, metric) if not wide else metric}" for kind, metric in columns),
    ]
    header += ["parameters", "wall s"] if wide else ["wall s"]
    sign = -1 if sort_by in HIGHER_IS_BETTER else 1
    ordered = sorted(runs, key=lambda run: (math.isnan(run.final(sort_by)), sign * run.final(sort_by)))
    rows = []
    for run in ordered:
        cells = [_number(run.final(metric) if kind == "final" else run.best(metric)) for kind, metric in columns]
        wall = f"{run.wall_seconds:.0f}" if run.wall_seconds is not None else "-"
        extra = [f"{run.parameters:,}" if run.parameters else "-", wall] if wide else [wall]
        name = SWEEP_JOB.match(run.directory.name)[1] if jobs else run.directory.name
        rows.append([name, *(str(run.value(key)) for key in varying), *cells, *extra])
    return header, rows


def fit_width(header: list[str], rows: list[list[str]], width: int) -> tuple[list[str], list[list[str]]]:
    """``header`` and ``rows`` of :func:`comparison_rows` without the last of the key columns
    (between the run and the first metric) that would make the printed table wider than ``width``
    characters. The run's name may wrap (to :data:`RUN_NAME_WIDTH` characters a line), headers
    wrap at spaces, other cells stay whole."""
    first_metric = next(index for index, name in enumerate(header) if name.startswith(("final ", "best ")))
    fixed = list(range(first_metric, len(header)))
    keys = list(range(1, first_metric))
    run = min(column_width(header, rows, 0), RUN_NAME_WIDTH + 3)
    while keys and 1 + run + sum(column_width(header, rows, index) for index in fixed + keys) > width:
        keys.pop()
    kept = [0, *keys, *fixed]
    return [header[index] for index in kept], [[row[index] for index in kept] for row in rows]


def column_width(header: list[str], rows: list[list[str]], index: int, whole_header: bool = False) -> int:
    """Characters a column takes in a rich table: its longest cell or header word (the whole
    header with ``whole_header``), and 3 around it."""
    words = [header[index]] if whole_header else header[index].split(" ")
    return 3 + max([len(row[index]) for row in rows] + [len(word) for word in words])


def table_width(header: list[str], rows: list[list[str]]) -> int:
    """Characters the whole table takes with no header or cell wrapped."""
    return 1 + sum(column_width(header, rows, index, whole_header=True) for index in range(len(header)))


def tokenizer_note(runs: list[Run], sort_by: str) -> str | None:
    """A note when runs with different vocabularies are sorted by a per-token metric."""
    if sort_by not in ("val/loss", "val/ppl") or len({repr(run.config.get("model.vocab_size")) for run in runs}) < 2:
        return None
    note = f"The runs have different tokenizers (model.vocab_size), so {sort_by}, per token, does not rank them"
    return note + ("; val/bpb, per byte, does: --sort val/bpb." if all(run.series("val/bpb") for run in runs) else ".")


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows([header, *rows])


def write_markdown(path: Path, header: list[str], rows: list[list[str]]) -> None:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def loss_figure(runs: list[Run], metrics: list[str]):
    """A matplotlib figure with one panel per metric: ``metric`` against the optimizer step, one
    line per run (a marker where a run has a single point).

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "compare --plot and --html draw with matplotlib, which is not installed; "
            "install the plot extra: pip install 'lm-framework[plot]'."
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for run in runs:
            points = run.series(metric)
            if points:
                axis.plot(*zip(*points), marker="o" if len(points) == 1 else None, label=run.directory.name)
        axis.set_xlabel("optimizer step")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot(path: Path, runs: list[Run], metrics: list[str]) -> None:
    """Write :func:`loss_figure` as a PNG (120 dpi) to ``path``."""
    figure = loss_figure(runs, metrics)
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=120)
    plt.close(figure)
