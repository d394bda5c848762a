"""Resuming, preemption, determinism and step accounting (end-to-end runs, marked slow)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from framework.callbacks import NonFiniteLossGuard
from framework.checkpointing import load_checkpoint_file
from framework.errors import CheckpointMismatchError, ConfigError, TrainingDivergedError
from framework.logger import RunCSVLogger
from framework.optim import warmup_cosine_multiplier
from framework.run.recipes import build_datamodule, build_model
from framework.run.training import train
from framework.tasks import LanguageModelingTask

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tiny_recipe(shakespeare_path, tmp_path, max_steps=40, val_every=5):
    return [
        "data=tinyshakespeare",
        f"data.path={shakespeare_path}",
        "tokenizer=char",
        "data.block_size=64",
        "data.batch_size=16",
        "model.n_layer=2",
        "model.n_head=4",
        "model.n_embd=128",
        "model.dropout=0.1",
        f"trainer.max_steps={max_steps}",
        f"trainer.val_check_interval={val_every}",
        "trainer.limit_val_batches=2",
        "trainer.deterministic=true",
        "scheduler.warmup_steps=5",
        "callbacks.progress=null",
        "sample.max_new_tokens=10",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


def val_rows(run_dir: Path) -> list[tuple[int, str]]:
    with (run_dir / "metrics.csv").open() as file:
        return [(int(row["step"]), row["val/loss"]) for row in csv.DictReader(file) if row.get("val/loss")]


def checkpoint_step(path: Path) -> int:
    try:
        return load_checkpoint_file(path, mmap=False)["global_step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def cli(*overrides, run_dir, wait=True):
    command = [sys.executable, "-m", "framework.train", *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WANDB_MODE": "offline"}
    if wait:
        return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env)
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def stop_after_step(process, checkpoint: Path, step: int, sig) -> int:
    """Send ``sig`` once ``checkpoint`` holds at least ``step``; return the step seen."""
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        seen = checkpoint_step(checkpoint)
        if seen >= step:
            process.send_signal(sig)
            process.wait(timeout=120)
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the run ended or stalled before reaching step {step}: {process.stderr.read()[-2000:]}")


def test_sigkill_then_resume_equals_uninterrupted_run_bitwise(shakespeare_path, tmp_path):
    recipe = [*tiny_recipe(shakespeare_path, tmp_path), "logger=csv"]
    uninterrupted = tmp_path / "A"
    assert cli(*recipe, run_dir=uninterrupted).returncode == 0

    interrupted = tmp_path / "B"
    process = cli(*recipe, run_dir=interrupted, wait=False)
    stop_after_step(process, interrupted / "checkpoints" / "last.ckpt", 15, signal.SIGKILL)
    killed_at = checkpoint_step(interrupted / "checkpoints" / "last.ckpt")
    assert 15 <= killed_at < 40
    resumed = cli(*recipe, run_dir=interrupted)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {interrupted / 'checkpoints' / 'last.ckpt'} at step {killed_at}" in resumed.stdout + resumed.stderr

    assert val_rows(interrupted) == val_rows(uninterrupted)
    assert [step for step, _ in val_rows(interrupted)] == list(range(5, 41, 5))
    weights_a = load_checkpoint_file(uninterrupted / "checkpoints" / "last.ckpt")["state_dict"]
    weights_b = load_checkpoint_file(interrupted / "checkpoints" / "last.ckpt")["state_dict"]
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)
    record = json.loads((interrupted / "run.json").read_text())
    assert record["status"] == "finished" and [r["from_step"] for r in record["resumes"]] == [killed_at]


def test_sigterm_saves_checkpoint_exits_cleanly_and_resumes_same_wandb_run(shakespeare_path, tmp_path):
    recipe = [*tiny_recipe(shakespeare_path, tmp_path, max_steps=60, val_every=20), "logger=wandb"]
    run_dir = tmp_path / "run"
    process = cli(*recipe, run_dir=run_dir, wait=False)
    # The first checkpoint is written at step 20; SIGTERM then lands a few steps later.
    stop_after_step(process, run_dir / "checkpoints" / "last.ckpt", 20, signal.SIGTERM)
    assert process.returncode == 0
    saved_at = checkpoint_step(run_dir / "checkpoints" / "last.ckpt")
    assert 20 <= saved_at < 60
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    run_id = (run_dir / "wandb" / "run_id").read_text().strip()

    first_config = (run_dir / ".hydra" / "config.yaml").read_text()
    resumed = cli(*recipe, run_dir=run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 60
    assert (run_dir / ".hydra" / "config.yaml").read_text() == first_config  # each attempt keeps its own
    assert len(list((run_dir / ".hydra").glob("attempt-*/config.yaml"))) == 1
    assert (run_dir / "wandb" / "run_id").read_text().strip() == run_id
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 2 and all(path.name.endswith(run_id) for path in wandb_runs)
    steps = [int(row["step"]) for row in csv.DictReader((run_dir / "metrics.csv").open()) if row.get("train/loss")]
    assert steps == sorted(set(steps))  # each training step logged once across both attempts

    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    again = cli(*recipe, run_dir=run_dir)
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before


def test_same_seed_repeats_every_evaluation_and_another_seed_differs(make_config, shakespeare_path, tmp_path):
    def evaluations(seed, name):
        cfg = make_config([*tiny_recipe(shakespeare_path, tmp_path, max_steps=20), "logger=none", f"seed={seed}"])
        cfg.paths.run_dir = str(tmp_path / name)
        train(cfg)
        return val_rows(tmp_path / name)

    first, second, other = evaluations(1, "a"), evaluations(1, "b"), evaluations(2, "c")
    assert len(first) == 4 and first == second
    assert all(a != c for (_, a), (_, c) in zip(first, other))


def test_resume_warns_on_changed_hyperparameters_and_refuses_another_architecture_or_tokenizer(
    make_config, shakespeare_path, tmp_path, caplog
):
    recipe = [*tiny_recipe(shakespeare_path, tmp_path, max_steps=10), "logger=none"]
    train(make_config(recipe))
    last = Path(make_config(recipe).paths.run_dir) / "checkpoints" / "last.ckpt"
    saved = last.read_bytes()

    with pytest.raises(
        CheckpointMismatchError, match=r"16 parameter\(s\) differ: lm_head.weight: checkpoint \(66, 128\) vs model \(66, 64\)"
    ):
        train(make_config([*recipe, "trainer.max_steps=20", "model.n_embd=64"]))
    assert last.read_bytes() == saved

    with pytest.raises(CheckpointMismatchError, match=r"trained with tokenizer [0-9a-f]{12}, but this run's tokenizer is"):
        train(make_config([*recipe, "trainer.max_steps=20", "tokenizer.unk_token='<UNK>'"]))
    assert last.read_bytes() == saved

    cfg = make_config([*recipe, "trainer.max_steps=20", "optimizer.lr=0.002", "trainer.log_every_n_steps=1"])
    result = train(cfg)
    assert "optimizer.lr: 0.001 -> 0.002" in caplog.text and "trainer.max_steps: 10 -> 20" in caplog.text
    assert result.trainer.global_step == 20
    # The resumed steps follow the new config's schedule: peak 0.002, cosine to min_lr 1e-4 at step 20.
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        lrs = {int(row["step"]): float(row["lr/decay"]) for row in csv.DictReader(file) if row.get("lr/decay")}
    for step in (10, 15, 19):
        assert lrs[step] == pytest.approx(0.002 * warmup_cosine_multiplier(step, 5, 20, 1e-4 / 0.002))
    assert lrs[19] == pytest.approx(1e-4)


def test_resume_never_refuses_a_directory_with_a_checkpoint(make_config, shakespeare_path, tmp_path):
    recipe = [*tiny_recipe(shakespeare_path, tmp_path, max_steps=6), "logger=none"]
    train(make_config(recipe))
    with pytest.raises(ConfigError, match="resume=never, but .* already holds last.ckpt"):
        train(make_config([*recipe, "resume=never"]))


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    make_config, shakespeare_path, tmp_path, monkeypatch, run_module
):
    summed_loss = LanguageModelingTask._summed_loss

    def diverge_at_step_7(self, batch):
        loss = summed_loss(self, batch)
        return loss * float("nan") if self.training and self.global_step == 6 else loss

    monkeypatch.setattr(LanguageModelingTask, "_summed_loss", diverge_at_step_7)
    cfg = make_config([*tiny_recipe(shakespeare_path, tmp_path, max_steps=10, val_every=3), "logger=wandb", "logger.wandb.mode=offline"])
    with pytest.raises(TrainingDivergedError, match="became nan at optimizer step 7"):
        train(cfg)
    checkpoint = load_checkpoint_file(Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 6
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())
    assert json.loads((Path(cfg.paths.run_dir) / "run.json").read_text())["status"] == "failed"
    (wandb_run,) = (Path(cfg.paths.run_dir) / "wandb").glob("offline-run-*")
    inspected = run_module("wandb", "leet", "inspect", "--summary", "--json", str(wandb_run), cwd=tmp_path)
    assert json.loads(inspected.stdout)["config"]["run"]["status"] == "failed"

    skipping = make_config(
        [*tiny_recipe(shakespeare_path, tmp_path, max_steps=10, val_every=3), "logger=none", "callbacks.nonfinite_loss.policy=skip"]
    )
    skipping.paths.run_dir = str(tmp_path / "skip")  # its own run, not a resumption of the stopped one
    assert train(skipping).trainer.global_step == 10


def test_device_loss_check_stops_and_skips_like_the_host_check(make_config, shakespeare_path, tmp_path, monkeypatch):
    """The CUDA path (DeviceNonFiniteGuard with the fused AdamW), run on the CPU: the error comes
    when the host reads the guard (before the checkpoint of step 9, or at the periodic read of
    step 8), the checkpoint holds step 6, and ``skip`` ends with exactly the weights of the host
    check's skip."""
    summed_loss = LanguageModelingTask._summed_loss

    def diverge_at_step_7(self, batch):
        loss = summed_loss(self, batch)
        return loss * float("nan") if self.training and self.global_step == 6 else loss

    monkeypatch.setattr(LanguageModelingTask, "_summed_loss", diverge_at_step_7)

    def config(run, *overrides, val_every=3):
        cfg = make_config([*tiny_recipe(shakespeare_path, tmp_path, max_steps=10, val_every=val_every), "logger=none", *overrides])
        cfg.paths.run_dir = str(tmp_path / run)
        return cfg

    skip_on_host = train(config("host", "callbacks.nonfinite_loss.policy=skip"))
    monkeypatch.setattr(NonFiniteLossGuard, "uses_device_check", staticmethod(lambda trainer, pl_module, optimizer: True))

    cfg = config("stop")
    with pytest.raises(TrainingDivergedError, match=r"became nan at optimizer step 7 \(read from the device at step 9;"):
        train(cfg)
    checkpoint = load_checkpoint_file(Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 6
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())

    # Without a checkpoint in between, the periodic read (every log_every_n_steps) finds it.
    with pytest.raises(TrainingDivergedError, match=r"became nan at optimizer step 7 \(read from the device at step 8;"):
        train(config("periodic", "trainer.log_every_n_steps=2", val_every=100))

    skip_on_device = train(config("device", "callbacks.nonfinite_loss.policy=skip"))
    assert skip_on_device.trainer.global_step == 10
    (guard,) = [callback for callback in skip_on_device.trainer.callbacks if isinstance(callback, NonFiniteLossGuard)]
    assert guard.reported == 1
    host_weights = skip_on_host.trainer.lightning_module.state_dict()
    device_weights = skip_on_device.trainer.lightning_module.state_dict()
    assert host_weights.keys() == device_weights.keys()
    assert all(torch.equal(host_weights[name], device_weights[name]) for name in host_weights)


def test_learning_rate_follows_optimizer_steps_under_accumulation(make_config, shakespeare_path, tmp_path):
    cfg = make_config(
        [
            *tiny_recipe(shakespeare_path, tmp_path, max_steps=12, val_every=100),
            "logger=none",
            "trainer.accumulate_grad_batches=4",
            "scheduler.warmup_steps=8",
            "trainer.log_every_n_steps=1",
            "optimizer.lr=0.001",
        ]
    )
    result = train(cfg)
    assert result.trainer.global_step == 12
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        lrs = {int(row["step"]): float(row["lr/decay"]) for row in csv.DictReader(file) if row.get("lr/decay")}
    # Logged before each update: the row at step s holds the rate of optimizer step k = s + 1.
    assert [lrs[k - 1] for k in range(1, 9)] == pytest.approx([0.001 * k / 8 for k in range(1, 9)])
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        lr_rows = [int(row["step"]) for row in csv.DictReader(file) if row.get("lr/decay")]
    assert lr_rows == list(range(12))  # one row per optimizer step, not one per micro-batch
    assert [step for step, _ in val_rows(Path(cfg.paths.run_dir))] == [12]  # validated at the last step


def test_validation_is_logged_at_the_step_it_describes(make_config, shakespeare_path, tmp_path):
    cfg = make_config(
        [*tiny_recipe(shakespeare_path, tmp_path, max_steps=9, val_every=3), "logger=none", "callbacks.model_checkpoint.save_top_k=-1"]
    )
    result = train(cfg)
    run_dir = Path(cfg.paths.run_dir)
    assert [step for step, _ in val_rows(run_dir)] == [3, 6, 9]

    evaluation_dir = tmp_path / "evaluation"
    task = LanguageModelingTask.load_from_checkpoint(
        run_dir / "checkpoints" / "best-step000006.ckpt", model=build_model(cfg, result.recipe.corpus.vocab_size), weights_only=True
    )
    trainer = pl.Trainer(logger=RunCSVLogger(evaluation_dir), enable_progress_bar=False, enable_model_summary=False, limit_val_batches=2)
    trainer.validate(task, datamodule=build_datamodule(cfg, result.recipe.corpus), verbose=False)
    (row,) = val_rows(evaluation_dir)
    assert row == (6, dict(val_rows(run_dir))[6])


def test_a_finished_run_resumed_for_more_steps_logs_every_step_once(make_config, shakespeare_path, tmp_path, run_module):
    recipe = [*tiny_recipe(shakespeare_path, tmp_path, max_steps=10, val_every=200), "trainer.log_every_n_steps=1", "logger=wandb"]
    for max_steps in (10, 20):  # validation only at the last step, where the first attempt's checkpoint is saved
        cfg = make_config([*recipe, f"trainer.max_steps={max_steps}", "logger.wandb.mode=offline"])
        train(cfg)
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    for metric, steps in (("train/loss", range(20)), ("lr/decay", range(20)), ("val/loss", (10, 20))):
        assert [int(row["step"]) for row in rows if row.get(metric)] == list(steps), metric
    logged = []
    for wandb_run in sorted((Path(cfg.paths.run_dir) / "wandb").glob("offline-run-*")):
        inspected = run_module("wandb", "leet", "inspect", "--json", str(wandb_run), cwd=tmp_path)
        history = [
            json.loads(line)["history"]["item"] for line in inspected.stdout.splitlines() if '"type":"history"' in line.replace(" ", "")
        ]
        logged += [item["trainer/global_step"] for item in history if "train/loss" in item]
    assert logged == list(range(20))
