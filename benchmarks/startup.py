"""Start-up cost: importing ``framework`` and the time from ``python -m framework.train`` to the
end of the first optimizer step on the default recipe.

    python benchmarks/startup.py [--repeats 5]

Prints medians over ``--repeats`` runs: ``python -c "pass"`` (the interpreter alone),
``python -c "import framework.train"``, and the default recipe's time to its first step with a
warm token cache (the first, untimed run fills it) and ``logger=csv``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def wall_seconds(command: list[str], **kwargs) -> float:
    start = time.time()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.time() - start


def first_step_seconds(scratch: Path, index: int) -> float:
    marker = scratch / f"first-step-{index}"
    environment = {**os.environ, "FIRST_STEP_FILE": str(marker), "PYTHONPATH": f"{PROJECT_ROOT / 'benchmarks'}{os.pathsep}{PROJECT_ROOT}"}
    command = [
        sys.executable,
        "-m",
        "framework.train",
        "logger=csv",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "scheduler.warmup_steps=1",
        "sample.max_new_tokens=1",
        "callbacks.progress=null",
        f"hydra.run.dir={scratch / f'run-{index}'}",
        "+callbacks.first_step._target_=first_step.FirstStepTime",
    ]
    start = time.time()
    subprocess.run(command, check=True, capture_output=True, env=environment, cwd=scratch)
    return float(marker.read_text()) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    interpreter = statistics.median(wall_seconds([sys.executable, "-c", "pass"]) for _ in range(repeats))
    imports = statistics.median(wall_seconds([sys.executable, "-c", "import framework.train"], cwd=PROJECT_ROOT) for _ in range(repeats))
    with tempfile.TemporaryDirectory() as scratch:
        first_step_seconds(Path(scratch), -1)  # fills the token cache
        first_steps = [first_step_seconds(Path(scratch), index) for index in range(repeats)]
    print(f"python -c pass: {interpreter:.2f} s")
    print(f"import framework.train: {imports:.2f} s ({imports - interpreter:.2f} s over the interpreter)")
    print(
        f"python -m framework.train to the end of the first optimizer step (default recipe, warm token cache): "
        f"median {statistics.median(first_steps):.2f} s, min {min(first_steps):.2f} s, max {max(first_steps):.2f} s"
    )


if __name__ == "__main__":
    main()
