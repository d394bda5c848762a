"""Resident memory while training from a large token file: windows are read from a memmap.

    python benchmarks/memory.py [--gigabytes 2] [--steps 300] [--dir /tmp]

Writes a ``--gigabytes`` file of uint16 token ids (the token cache's format), opens it as the
framework does (``np.memmap``, read-only), and trains the shakespeare_char GPT on it through the
framework's DataModule, task and Lightning Trainer, with a validation pass over its last 1 MB.
Prints the process's resident set size (VmRSS) before the file is opened (the baseline: Python,
torch, Lightning, the model) and its peak over every training and validation step, sampled
after each batch. The file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from framework.data import LanguageModelingDataModule
from framework.models import GPT
from framework.tasks import LanguageModelingTask

VOCAB_SIZE, BLOCK_SIZE, BATCH_SIZE = 65, 64, 12


def resident_megabytes(field: str = "VmRSS") -> float:
    """This process's resident memory from /proc/self/status (Linux), in MB: ``VmRSS`` (all),
    ``RssFile`` (mapped file pages, the token file's among them) or ``RssAnon``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMemory(pl.Callback):
    """The highest VmRSS seen after any training or validation batch."""

    def __init__(self) -> None:
        self.peak, self.peak_file = 0.0, 0.0

    def _sample(self, *args) -> None:
        self.peak = max(self.peak, resident_megabytes())
        self.peak_file = max(self.peak_file, resident_megabytes("RssFile"))

    on_train_batch_end = on_validation_batch_end = _sample


def write_token_file(path: Path, gigabytes: float, chunk_tokens: int = 1 << 26) -> int:
    """Random uint16 ids below VOCAB_SIZE, written in 128 MB chunks; the number of tokens."""
    total, generator = int(gigabytes * 1e9) // 2, np.random.default_rng(0)
    with open(path, "wb") as file:
        for start in range(0, total, chunk_tokens):
            generator.integers(0, VOCAB_SIZE, size=min(chunk_tokens, total - start), dtype=np.uint16).tofile(file)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dir", default=None, help="where to write the token file (default: the system's temp dir)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = GPT(vocab_size=VOCAB_SIZE, block_size=BLOCK_SIZE, n_layer=4, n_head=4, n_embd=128)
    task = LanguageModelingTask(
        model,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 1e-3},
        scheduler={"_target_": "framework.optim.constant", "warmup_steps": 0},
    )
    peak = PeakMemory()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=args.steps,
        val_check_interval=args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[peak],
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        path = Path(scratch) / "train.bin"
        start = time.perf_counter()
        num_tokens = write_token_file(path, args.gigabytes)
        print(f"wrote {path.stat().st_size / 1e9:.2f} GB ({num_tokens:,} uint16 tokens) in {time.perf_counter() - start:.1f} s")
        baseline, baseline_file = resident_megabytes(), resident_megabytes("RssFile")
        tokens = np.memmap(path, dtype=np.uint16, mode="r")
        val_tokens = tokens[-500_000:]  # the last 1 MB, a view of the same map
        data = LanguageModelingDataModule(
            tokens, val_tokens, block_size=BLOCK_SIZE, batch_size=BATCH_SIZE, num_train_samples=args.steps * BATCH_SIZE, seed=0
        )
        start = time.perf_counter()
        trainer.fit(task, datamodule=data)
        seconds = time.perf_counter() - start
    print(
        f"trained {trainer.global_step} steps (+ validation over {len(val_tokens):,} tokens) in {seconds:.1f} s; "
        f"RSS baseline {baseline:,.0f} MB, peak {peak.peak:,.0f} MB: {peak.peak - baseline:+,.0f} MB above the baseline "
        f"for a {num_tokens * 2 / 1e9:.2f} GB token file (mapped file pages: {peak.peak_file - baseline_file:+,.0f} MB)"
    )


if __name__ == "__main__":
    main()
