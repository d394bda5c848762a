"""Data parallel training on CPU with 2 processes (gloo): the same numbers as one process."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from framework.checkpointing import load_checkpoint_file
from framework.data.datamodule import RandomWindows, SequentialWindows, UnpaddedDistributedSampler

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_training_samples_are_disjoint_across_ranks_and_cover_every_index():
    windows = RandomWindows(np.arange(1000, dtype=np.uint16), block_size=8, num_samples=48, seed=0)
    per_rank = [list(DistributedSampler(windows, num_replicas=2, rank=rank, shuffle=False)) for rank in (0, 1)]
    assert set(per_rank[0]).isdisjoint(per_rank[1]) and sorted(per_rank[0] + per_rank[1]) == list(range(48))


def test_validation_windows_are_split_without_padding():
    windows = SequentialWindows(np.arange(1 + 8 * 11, dtype=np.uint16), block_size=8)  # 11 windows
    per_rank = [list(UnpaddedDistributedSampler(windows, num_replicas=2, rank=rank)) for rank in (0, 1)]
    assert sorted(per_rank[0] + per_rank[1]) == list(range(11))  # each window once: no duplicate for rank 1
    assert [len(UnpaddedDistributedSampler(windows, 2, rank)) for rank in (0, 1)] == [6, 5]


def run(*overrides, run_dir):
    result = subprocess.run(
        [sys.executable, "-m", "framework.train", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def recipe(corpus, tmp_path):
    return [
        "data=text_files", f"data.path={corpus}", "tokenizer=char", "data.block_size=32", "model.n_layer=2",
        "model.n_head=2", "model.n_embd=32", "model.dropout=0.0", "trainer.deterministic=true",
        "trainer.accelerator=cpu", "trainer.limit_val_batches=1.0", "callbacks.progress_bar=null",
        "sample.max_new_tokens=5", "logger=csv", f"paths.cache_dir={tmp_path / 'cache'}",
    ]


@pytest.fixture
def corpus(tmp_path, shakespeare_path):
    path = tmp_path / "corpus.txt"
    path.write_text(shakespeare_path.read_text()[:100_000])
    return path


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint_file(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.slow
def test_two_processes_with_half_batches_follow_one_process(corpus, tmp_path):
    common = [*recipe(corpus, tmp_path), "trainer.max_steps=20", "trainer.val_check_interval=5", "scheduler.warmup_steps=5"]
    run(*common, "data.batch_size=12", run_dir=tmp_path / "one")
    run(*common, "data.batch_size=6", "strategy=ddp", "trainer.devices=2", run_dir=tmp_path / "two")

    def evaluations(run_dir):
        with (run_dir / "metrics.csv").open() as file:
            return [(int(row["step"]), float(row["val/loss"]), float(row["val/ppl"])) for row in csv.DictReader(file) if row.get("val/loss")]

    one, two = evaluations(tmp_path / "one"), evaluations(tmp_path / "two")
    assert [step for step, _, _ in one] == [step for step, _, _ in two] == [5, 10, 15, 20]
    for (_, loss_one, ppl_one), (_, loss_two, ppl_two) in zip(one, two):
        assert abs(loss_one - loss_two) < 1e-5 and abs(ppl_one - ppl_two) / ppl_one < 1e-5
    weights_one, weights_two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max((weights_one[name] - weights_two[name]).abs().max().item() for name in weights_one) < 1e-5
    # one run directory, written by the first process only
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "corpus.txt", "one", "two"]
    assert not list((tmp_path / "two").glob("attempt-*"))


@pytest.mark.slow
def test_gradient_accumulation_and_processes_give_the_same_step(corpus, tmp_path):
    # SGD without momentum: the step is the gradient itself, so any difference in it shows.
    common = [
        *recipe(corpus, tmp_path), "trainer.max_steps=1", "scheduler=constant", "trainer.limit_val_batches=1",
        "optimizer=sgd", "optimizer.momentum=0", "optimizer.lr=1.0", "trainer.gradient_clip_val=0",
    ]
    run(*common, "data.batch_size=8", run_dir=tmp_path / "batch8")
    run(*common, "data.batch_size=2", "trainer.accumulate_grad_batches=4", run_dir=tmp_path / "accumulated")
    run(*common, "data.batch_size=1", "trainer.accumulate_grad_batches=4", "strategy=ddp", "trainer.devices=2", run_dir=tmp_path / "ddp")
    reference = weights(tmp_path / "batch8")
    for other in ("accumulated", "ddp"):
        compared = weights(tmp_path / other)
        assert max((reference[name] - compared[name]).abs().max().item() for name in reference) < 1e-6, other


def test_each_process_and_batch_gets_its_own_dropout_seed():
    from framework.callbacks.rng_state import batch_seed

    seeds = {(rank, batch): batch_seed(1337, rank, batch) for rank in (0, 1) for batch in range(50)}
    assert len(set(seeds.values())) == 100  # differ across processes and batches
    assert batch_seed(1337, 1, 7) == seeds[(1, 7)] and batch_seed(1338, 1, 7) != seeds[(1, 7)]
    assert all(0 <= seed < 2**63 for seed in seeds.values())
