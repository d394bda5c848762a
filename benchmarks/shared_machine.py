"""Two training runs sharing one machine: each alone, two side by side with every core each, and
two side by side with ``threads=<cores / 2>`` each.

    python benchmarks/shared_machine.py [--steps 100] [--repeats 3]

Trains the default recipe (GPT on the stdlib, ``logger=csv``, warm token cache) for ``--steps``
steps and reads each run's median ``perf/tokens_per_sec`` from its ``metrics.csv`` (training
only: start-up and validation excluded). Prints the medians over ``--repeats`` rounds and each
side-by-side setting's tokens/s per run as a share of one run alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def command(run_dir: Path, steps: int, threads: int | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "framework.train",
        "logger=csv",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps}",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=10",
        "sample.max_new_tokens=1",
        "callbacks.progress=null",
        f"hydra.run.dir={run_dir}",
        *([f"threads={threads}"] if threads else []),
    ]


def tokens_per_second(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return statistics.median(float(row["perf/tokens_per_sec"]) for row in rows if row.get("perf/tokens_per_sec"))


def side_by_side(scratch: Path, name: str, runs: int, steps: int, threads: int | None) -> list[float]:
    """Start ``runs`` training commands at once; the tokens/s of each."""
    directories = [scratch / f"{name}-{index}" for index in range(runs)]
    processes = [subprocess.Popen(command(path, steps, threads), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for path in directories]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
    return [tokens_per_second(path) for path in directories]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    results: dict[str, list[float]] = {
        "one run alone": [],
        "two runs, all cores each": [],
        f"two runs, threads={max(1, cores // 2)} each": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        side_by_side(Path(scratch), "warm", 1, 20, None)  # fills the token cache
        for round_index in range(options.repeats):
            for setting, (runs, threads) in zip(results, ((1, None), (2, None), (2, max(1, cores // 2)))):
                results[setting] += side_by_side(Path(scratch), f"{round_index}-{runs}-{threads}", runs, options.steps, threads)
    alone = statistics.median(results["one run alone"])
    print(f"{cores} cores, default recipe, {options.steps} steps, medians of {options.repeats} rounds (tokens/s per run)")
    for setting, values in results.items():
        print(f"  {setting:<28} {statistics.median(values):>9,.0f}  {statistics.median(values) / alone:.2f} of one run alone")


if __name__ == "__main__":
    main()
