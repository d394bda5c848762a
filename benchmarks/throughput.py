"""Framework training step vs a plain PyTorch loop on the shakespeare_char recipe, interleaved.

    python benchmarks/throughput.py [--data ../shared/data/tinyshakespeare/input.txt] [--rounds 5] [--steps 60] [overrides ...]

Each round trains ``--steps`` optimizer steps with ``python -m framework.train
experiment=shakespeare_char`` (in this process, ``logger=csv``, no validation inside the
timed steps) and the same number with ``benchmarks/plain_loop.py``; the first 10 steps of
each are not timed. Prints the median ms/step and tokens/s of both and their ratio
(framework tokens/s / plain tokens/s). Extra arguments are config overrides for the
framework side (for example ``trainer.precision=bf16-mixed``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import plain_setup, plain_steps  # noqa: E402

from framework.training import train  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
UNTIMED_STEPS = 10
TOKENS_PER_STEP = 12 * 64


class StepClock(pl.Callback):
    """Wall seconds between the ends of consecutive training batches (one optimizer step each)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        return list(np.diff(self.ends))


def framework_steps(data: Path, steps: int, overrides: list[str], root: Path) -> tuple[list[float], np.ndarray]:
    """Seconds of each step after the first (timed from the previous step's end), and the training tokens."""
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=shakespeare_char", f"data.path={data}", "logger=csv", f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps}", "trainer.limit_val_batches=1", "scheduler.warmup_steps=5",
            "sample.max_new_tokens=1", *overrides,
        ])
    run_dir = Path(tempfile.mkdtemp(dir=root))
    with open_dict(cfg):
        cfg.paths.root_dir = cfg.paths.log_dir = str(root)
        cfg.paths.run_dir = str(run_dir)
        cfg.callbacks.step_clock = {"_target_": f"{__name__}.StepClock"}
    result = train(cfg)
    (clock,) = [callback for callback in result.trainer.callbacks if isinstance(callback, StepClock)]
    # the last step includes the final validation
    return clock.step_seconds()[:-1], np.asarray(result.recipe.corpus.tokens("train"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    options, overrides = parser.parse_known_args()

    framework_seconds, plain_seconds = [], []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for _ in range(options.rounds):
            seconds, tokens = framework_steps(options.data.resolve(), options.steps, overrides, root)
            framework_seconds += seconds[UNTIMED_STEPS:]
            model, optimizer = plain_setup(int(tokens.max()) + 2)  # the char vocabulary: ids + <unk>
            plain_seconds += plain_steps(model, optimizer, tokens, options.steps, 0)[UNTIMED_STEPS:]

    framework_ms, plain_ms = statistics.median(framework_seconds) * 1000, statistics.median(plain_seconds) * 1000
    print(f"steps timed: framework {len(framework_seconds)}, plain {len(plain_seconds)} ({options.rounds} interleaved rounds)")
    print(f"framework ({' '.join(overrides) or 'fp32 eager'}): {framework_ms:.2f} ms/step, {TOKENS_PER_STEP / framework_ms * 1000:,.0f} tokens/s")
    print(f"plain PyTorch loop (fp32 eager): {plain_ms:.2f} ms/step, {TOKENS_PER_STEP / plain_ms * 1000:,.0f} tokens/s")
    print(f"ratio framework/plain tokens/s: {plain_ms / framework_ms:.3f}")


if __name__ == "__main__":
    main()
