"""optimizer=muon end to end: it trains below a computed baseline, logs both optimizers' rates,
and a resumed run equals the uninterrupted one bitwise."""

import csv
from pathlib import Path

import pytest
import torch

from framework.checkpointing import load_checkpoint_file
from framework.run.training import train

pytestmark = pytest.mark.slow


def recipe(shakespeare_path, cache_dir, max_steps):
    return [
        "data=tinyshakespeare",
        f"data.path={shakespeare_path}",
        "tokenizer=char",
        "data.block_size=32",
        "data.batch_size=16",
        "model.n_layer=2",
        "model.n_head=2",
        "model.n_embd=64",
        "model.dropout=0.0",
        "optimizer=muon",
        f"trainer.max_steps={max_steps}",
        "trainer.val_check_interval=10",
        "trainer.limit_val_batches=4",
        "trainer.log_every_n_steps=1",
        "trainer.deterministic=true",
        "scheduler=constant",
        "scheduler.warmup_steps=5",
        "callbacks.progress=null",
        "sample.max_new_tokens=5",
        "logger=csv",
        f"paths.cache_dir={cache_dir}",
    ]


def rows(run_dir: Path, metric: str) -> list[tuple[int, str]]:
    with (run_dir / "metrics.csv").open() as file:
        return [(int(row["step"]), row[metric]) for row in csv.DictReader(file) if row.get(metric)]


def test_muon_trains_below_the_unigram_baseline_and_logs_both_rates(make_config, shakespeare_path, tmp_path, unigram_entropy):
    cfg = make_config(recipe(shakespeare_path, tmp_path / "cache", max_steps=60))
    result = train(cfg)
    run_dir = Path(cfg.paths.run_dir)
    baseline = unigram_entropy(result.recipe.corpus.tokens("train"))  # 3.3 nats: letter frequencies alone
    assert result.metrics["val/loss"] < baseline - 0.3
    muon, adamw = (dict(rows(run_dir, f"lr/{group}")) for group in ("muon", "decay"))
    assert float(muon[9]) == pytest.approx(0.02) and float(adamw[9]) == pytest.approx(1e-3)  # after warmup, constant


def test_a_resumed_muon_run_equals_the_uninterrupted_one_bitwise(make_config, shakespeare_path, tmp_path):
    runs = {}
    for name, stops in (("uninterrupted", (20,)), ("resumed", (10, 20))):
        for max_steps in stops:
            cfg = make_config([*recipe(shakespeare_path, tmp_path / "cache", max_steps), f"hydra.run.dir={tmp_path / name}"])
            cfg.paths.run_dir = str(tmp_path / name)
            train(cfg)
        runs[name] = tmp_path / name
    assert rows(runs["resumed"], "val/loss") == rows(runs["uninterrupted"], "val/loss")
    assert [step for step, _ in rows(runs["resumed"], "val/loss")] == [10, 20]
    first, second = (load_checkpoint_file(run / "checkpoints" / "last.ckpt") for run in runs.values())
    assert all(torch.equal(first["state_dict"][name], second["state_dict"][name]) for name in first["state_dict"])
    muon_state = [state for state in second["optimizer_states"][0]["state"].values() if "momentum_buffer" in state]
    assert len(muon_state) == 8  # the 2 blocks' 4 matrices each: Muon's momentum came back with the checkpoint
