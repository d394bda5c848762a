"""Training tokens/s from a prepared 3-source mixture against a single token file.

    python benchmarks/mixture_throughput.py [--rounds 7] [--steps 60] [overrides ...]

Prepares three sources with ``python -m framework.prepare`` (one BPE tokenizer of 4096 ids):
Tiny Shakespeare's paragraphs, the SST-2 training sentences and the standard library's
top-level ``*.py`` files, and writes the same texts, concatenated, as one ``.txt`` file. Each
round then trains the main job's model (``model=gpt``: 4 layers, 128 wide, block_size 128,
batch_size 16) for ``--steps`` steps twice, in the same process: once with ``data=prepared
data.mixture=[...]`` (weights 0.5, 0.2, 0.3) and once with ``data=text_files`` on the single
file (the token cache ``python -m framework.train`` builds, its own BPE of 4096 ids); the order
alternates between rounds. A callback times each step from one ``on_train_batch_start`` to the
next (data loading, forward, backward and optimizer step); the first 10 steps of each run are
not timed. Prints the median tokens/s of each, the ratio mixture / single file of the medians
and of each round (goal >= 0.98), and each data path's median time to produce one batch,
measured on its DataLoader alone. Extra arguments are config overrides for both runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from framework.run.training import train

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared" / "data"
UNTIMED_STEPS = 10
WEIGHTS = {"plays": 0.5, "reviews": 0.2, "code": 0.3}


class StepClock(pl.Callback):
    """Seconds between consecutive ``on_train_batch_start`` calls."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.starts.append(time.perf_counter())

    def seconds(self) -> list[float]:
        return [end - start for start, end in zip(self.starts, self.starts[1:])][UNTIMED_STEPS:]


def write_sources(folder: Path, shared: Path) -> dict[str, Path]:
    """The three sources as files for ``prepare``, and ``corpus.txt`` holding the same texts."""
    folder.mkdir(parents=True)
    plays = (shared / "tinyshakespeare" / "input.txt").read_text()
    sentences = [line.split("\t")[0] for line in (shared / "sst2" / "train.tsv").read_text().splitlines()[1:]]
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    (folder / "plays.txt").write_text(plays)
    (folder / "reviews.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in sentences))
    (folder / "code").mkdir()
    code = [path.read_text(encoding="utf-8", errors="replace") for path in stdlib]
    for path, text in zip(stdlib, code):
        (folder / "code" / f"{path.stem}.txt").write_text(text)
    (folder / "corpus.txt").write_text("\n\n".join([plays, "\n".join(sentences), *code]))
    return {"plays": folder / "plays.txt", "reviews": folder / "reviews.jsonl", "code": folder / "code" / "*.txt"}


def prepare_mixture(sources: dict[str, Path], scratch: Path) -> Path:
    overrides = [f"+input.sources.{name}.path={path}" for name, path in sources.items()]
    overrides += ["+input.sources.plays.txt_documents=paragraphs", "+input.sources.code.txt_documents=file"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.prepare",
            *overrides,
            f"output.dir={scratch / 'mixture'}",
            f"paths.cache_dir={scratch / 'cache'}",
        ],
        check=True,
        cwd=scratch,
        capture_output=True,
    )
    return scratch / "mixture"


def run(data_overrides: list[str], steps: int, overrides: list[str], scratch: Path) -> tuple[list[float], float, int]:
    """Train ``steps`` steps; the timed step seconds, the median seconds the DataLoader alone
    takes per batch, and the tokens per step."""
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                *data_overrides,
                "logger=csv",
                "callbacks.progress=null",
                f"trainer.max_steps={steps}",
                f"trainer.val_check_interval={steps}",
                "trainer.limit_val_batches=1",
                "scheduler.warmup_steps=5",
                "sample.max_new_tokens=1",
                *overrides,
            ],
        )
    with open_dict(cfg):
        cfg.paths.root_dir = cfg.paths.log_dir = str(scratch)
        cfg.paths.cache_dir = str(scratch / "cache")
        cfg.paths.run_dir = tempfile.mkdtemp(dir=scratch)
        cfg.callbacks.step_clock = {"_target_": f"{__name__}.StepClock"}
    result = train(cfg)
    (clock,) = [callback for callback in result.trainer.callbacks if isinstance(callback, StepClock)]
    batch_seconds, start = [], time.perf_counter()
    for _ in result.trainer.datamodule.train_dataloader():  # the run's batches again, without training
        batch_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
    return clock.seconds(), statistics.median(batch_seconds), cfg.data.batch_size * cfg.data.block_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--shared", type=Path, default=SHARED)
    options, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        sources = write_sources(scratch / "text", options.shared)
        mixture = prepare_mixture(sources, scratch)
        paths = {
            "mixture": [
                "data=prepared",
                "data.mixture=[" + ",".join(f"{{path:{mixture / name},weight:{weight}}}" for name, weight in WEIGHTS.items()) + "]",
            ],
            "single file": ["data=text_files", f"data.path={scratch / 'text' / 'corpus.txt'}"],
        }
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        loading: dict[str, list[float]] = {name: [] for name in paths}
        tokens: dict[str, int] = {}
        ratios = []
        for round_index in range(options.rounds):
            medians = {}
            for name in list(paths)[:: 1 if round_index % 2 else -1]:
                step_seconds, batch_seconds, tokens[name] = run(paths[name], options.steps, overrides, scratch)
                seconds[name] += step_seconds
                loading[name].append(batch_seconds)
                medians[name] = statistics.median(step_seconds)
            ratios.append(medians["single file"] / medians["mixture"])
    if tokens["mixture"] != tokens["single file"]:
        raise SystemExit(
            f"The two runs train on different tokens per step ({tokens}); give both the same data.batch_size and data.block_size."
        )
    tokens = tokens["mixture"]
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"{options.rounds} rounds, {len(seconds['mixture'])} timed steps of each, {tokens} tokens per step")
    for name, median in medians.items():
        print(
            f"{name}: {median * 1000:.2f} ms/step, {tokens / median:,.0f} tokens/s; "
            f"DataLoader alone {statistics.median(loading[name]) * 1e6:.0f} us/batch"
        )
    print(
        f"mixture / single file tokens/s: {medians['single file'] / medians['mixture']:.3f} of the medians; "
        f"{statistics.median(ratios):.3f} median of the rounds' ratios ({min(ratios):.3f}-{max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
