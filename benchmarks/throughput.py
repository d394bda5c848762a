"""Framework training step vs a plain PyTorch loop on the shakespeare_char recipe, step by step.

    python benchmarks/throughput.py [--data ../shared/data/tinyshakespeare/input.txt] [--rounds 5] [--steps 100] [overrides ...]

Each round trains ``--steps`` optimizer steps with ``python -m framework.train
experiment=shakespeare_char`` (in this process, ``logger=csv``, no validation inside the
timed steps); between two framework steps, a callback runs one step of each of two
``benchmarks/plain_loop.py`` loops, each on its own model and optimizer: ``plain``, with the
framework's AdamW options (``fused``), and ``classic``, with torch's default AdamW as nanoGPT
uses it on CPU; the two take turns at going first. Alternating single steps puts all three
under the same machine conditions: this shared 2-core VM drifts by 10-30 % over seconds, more
than the differences measured. A
framework step is timed from the end of the previous plain steps to the start of the next
(Lightning's hooks, data loading and logging included); the first 10 of each are not timed,
nor the last (the framework's ends in the final validation).

Prints the median ms/step and tokens/s of each, and for the framework against each loop the
ratio of tokens/s: of the medians, and the median (min-max) of the rounds' own ratios. The
``plain`` ratio is the framework's overhead; the ``classic`` one, its speed against the
classic fp32 eager recipe. Then where the framework's and the plain loop's steps spend their
time: the median of each phase (:data:`FRAMEWORK_PHASES`, ``plain_loop.PHASES``; medians, so
they need not add up to the median step). Extra arguments are config overrides for the
framework side (for example ``model.compile=true``); both loops stay fp32 eager.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import plain_setup, plain_steps  # noqa: E402

from framework.run.training import train  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
UNTIMED_STEPS = 10
TOKENS_PER_STEP = 12 * 64


# The framework's phases, each ending when this callback's hook of that name runs (hooks of the
# callbacks listed before it fall in the phase that hook ends, those after it in the next one).
# Lightning's automatic optimization calls optimizer.step with a closure that runs training_step,
# zero_grad and backward; then it clips, steps the optimizer and the LR scheduler, and calls
# on_train_batch_end. "forward": entering that chain, training_step (forward pass, loss, checks,
# logging); "backward": through the on_after_backward hooks and out of the closure;
# "optimizer": clipping, the step, the scheduler; "between": the rest of on_train_batch_end,
# logging, the validation check and the next batch's loading and on_train_batch_start hooks.
FRAMEWORK_PHASES = {
    "forward": "on_before_zero_grad",
    "zero_grad": "on_before_backward",
    "backward": "on_before_optimizer_step",
    "optimizer": "on_train_batch_end",
    "between": "on_train_batch_start",
}


class InterleavedPlainLoops(pl.Callback):
    """Before each framework batch, time the framework's previous step, then run and time one
    step of each plain loop on the same training tokens (seconds per phase in ``seconds[name]``)."""

    def __init__(self, optimizer_options: dict) -> None:
        self.loop_options = {"plain": optimizer_options, "classic": {}}
        self.seconds: dict[str, list[dict[str, float]]] = {"framework": [], "plain": [], "classic": []}
        self.marks: dict[str, float] = {}  # perf_counter() at the start of the framework's step and at its hooks

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tokens = trainer.datamodule.train_set.tokens
        # the char vocabulary: ids + <unk>
        self.loops = {name: plain_setup(int(self.tokens.max()) + 2, **options) for name, options in self.loop_options.items()}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.marks["on_train_batch_start"] = time.perf_counter()
        # A step that missed a hook (none should) is not timed.
        if all(hook in self.marks for hook in ("start", *FRAMEWORK_PHASES.values())):
            ends = [self.marks["start"], *(self.marks[hook] for hook in FRAMEWORK_PHASES.values())]
            self.seconds["framework"].append({phase: end - start for phase, start, end in zip(FRAMEWORK_PHASES, ends, ends[1:])})
        # Alternate the loops' order: the step right after the framework's runs with colder caches.
        names = list(self.loops)[:: 1 if batch_idx % 2 else -1]
        for name in names:
            model, optimizer = self.loops[name]
            self.seconds[name] += plain_steps(model, optimizer, self.tokens, 1, len(self.seconds[name]))
        self.marks = {"start": time.perf_counter()}

    def _mark(self, hook: str) -> None:
        self.marks[hook] = time.perf_counter()

    def on_before_zero_grad(self, *args) -> None:
        self._mark("on_before_zero_grad")

    def on_before_backward(self, *args) -> None:
        self._mark("on_before_backward")

    def on_before_optimizer_step(self, *args) -> None:
        self._mark("on_before_optimizer_step")

    def on_train_batch_end(self, *args) -> None:
        self._mark("on_train_batch_end")


def interleaved_steps(data: Path, steps: int, overrides: list[str], root: Path) -> dict[str, list[dict[str, float]]]:
    """Seconds per phase of the framework's and the plain loops' steps, alternated, after the untimed ones."""
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "experiment=shakespeare_char",
                f"data.path={data}",
                "logger=csv",
                f"trainer.max_steps={steps}",
                f"trainer.val_check_interval={steps}",
                "trainer.limit_val_batches=1",
                "scheduler.warmup_steps=5",
                "sample.max_new_tokens=1",
                *overrides,
            ],
        )
    if cfg.trainer.accumulate_grad_batches != 1:
        raise SystemExit(
            f"benchmarks/throughput.py compares whole optimizer steps batch by batch; trainer.accumulate_grad_batches="
            f"{cfg.trainer.accumulate_grad_batches} would compare micro-batches with full plain-loop steps. Leave it at 1."
        )
    optimizer_options = {key: cfg.optimizer[key] for key in ("fused", "foreach") if cfg.optimizer.get(key) is not None}
    with open_dict(cfg):
        cfg.paths.root_dir = cfg.paths.log_dir = str(root)
        cfg.paths.run_dir = tempfile.mkdtemp(dir=root)
        cfg.callbacks.interleaved_plain_loops = {"_target_": f"{__name__}.InterleavedPlainLoops", "optimizer_options": optimizer_options}
    result = train(cfg)
    (clock,) = [callback for callback in result.trainer.callbacks if isinstance(callback, InterleavedPlainLoops)]
    # The framework's last step is never closed by a next batch: the plain loops' last is dropped too.
    timed = len(clock.seconds["framework"])
    return {name: seconds[UNTIMED_STEPS:timed] for name, seconds in clock.seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s [--data DATA] [--rounds ROUNDS] [--steps STEPS] [override ...]",
        epilog="Other arguments are config overrides for the framework side, e.g. model.compile=true trainer.precision=bf16-mixed.",
    )
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    options, overrides = parser.parse_known_args()
    if options.steps <= UNTIMED_STEPS + 1:
        parser.error(
            f"--steps {options.steps}: the first {UNTIMED_STEPS} steps of each round and the last are not timed; "
            f"give more than {UNTIMED_STEPS + 1}"
        )

    seconds: dict[str, list[float]] = {"framework": [], "plain": [], "classic": []}
    phases: dict[str, list[dict[str, float]]] = {"framework": [], "plain": []}
    round_ratios: dict[str, list[float]] = {"plain": [], "classic": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(options.rounds):
            measured = interleaved_steps(options.data.resolve(), options.steps, overrides, Path(scratch))
            totals = {name: [sum(step.values()) for step in step_phases] for name, step_phases in measured.items()}
            for name in seconds:
                seconds[name] += totals[name]
            for name in phases:
                phases[name] += measured[name]
            for name in round_ratios:
                round_ratios[name].append(statistics.median(totals[name]) / statistics.median(totals["framework"]))

    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    labels = {
        "framework": f"framework ({' '.join(overrides) or 'fp32 eager'})",
        "plain": "plain loop, the framework's AdamW options",
        "classic": "classic loop, torch's default AdamW",
    }
    print(f"steps timed: {len(seconds['framework'])} of each ({options.rounds} rounds, alternating steps)")
    for name, label in labels.items():
        print(f"{label}: {medians[name]:.2f} ms/step, {TOKENS_PER_STEP / medians[name] * 1000:,.0f} tokens/s")
    for name, ratios in round_ratios.items():
        print(
            f"ratio framework/{name} tokens/s: {medians[name] / medians['framework']:.3f} of the medians; "
            f"{statistics.median(ratios):.3f} median of the rounds' ratios ({min(ratios):.3f}-{max(ratios):.3f})"
        )
    for name, step_phases in phases.items():
        split = ", ".join(f"{phase} {statistics.median(step[phase] for step in step_phases) * 1000:.2f}" for phase in step_phases[0])
        print(f"{name} phases, median ms: {split}")


if __name__ == "__main__":
    main()
