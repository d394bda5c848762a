"""Score finished language-model runs on the shipped harness tasks of their own text.

    python benchmarks/downstream.py --shakespeare ../shared/data/tinyshakespeare/input.txt <run dir> [<run dir> ...]

A run trained on Tiny Shakespeare (``data=tinyshakespeare``) is scored on
``shakespeare_continuation`` and ``shakespeare_cloze``, any other on the ``stdlib_*`` tasks,
each with ``python -m framework.evaluate run_dir=<run> checkpoint=last harness.tasks=[...]``
(all 500 items). Prints one Markdown row per run and task: accuracy, chance, the one-sided
binomial p-value, and the evaluation's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

PROJECT = Path(__file__).resolve().parents[1]


def tasks_for(run_dir: Path) -> list[str]:
    """The shipped tasks of the text ``run_dir`` trained on."""
    source = OmegaConf.load(run_dir / ".hydra" / "config.yaml").data.source._target_
    prefix = "shakespeare" if source.endswith("TinyShakespeareSource") else "stdlib"
    return [f"{prefix}_continuation", f"{prefix}_cloze"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shakespeare", type=Path, required=True, help="Tiny Shakespeare's input.txt")
    parser.add_argument("runs", type=Path, nargs="+", help="finished language-model run directories")
    options = parser.parse_args()
    print("| run | task | acc | chance | p-value (binomial, one-sided) | seconds |\n|---|---|---|---|---|---|")
    for run_dir in options.runs:
        tasks = tasks_for(run_dir)
        command = [
            sys.executable,
            "-m",
            "framework.evaluate",
            f"run_dir={run_dir.resolve()}",
            "checkpoint=last",
            f"harness.tasks=[{','.join(tasks)}]",
            f"harness.shakespeare={options.shakespeare.resolve()}",
        ]
        started = time.perf_counter()
        output = subprocess.run(command, cwd=PROJECT, check=True, capture_output=True, text=True).stdout
        seconds = time.perf_counter() - started
        record, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
        for task in tasks:
            figures = record["harness"][task]
            print(
                f"| {run_dir.name} | {task} | {figures['acc']:.3f} | {figures['chance']:.3f} | {figures['p_value']:.2g} | {seconds:.0f} |"
            )


if __name__ == "__main__":
    main()
