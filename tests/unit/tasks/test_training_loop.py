"""What the training loop does on every step: logging cadence, progress bar updates, the optimizer."""

from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import RichProgressBar

from framework.callbacks import StepProgressBar
from framework.data import LanguageModelingDataModule
from framework.models import GPT
from framework.optim import build_optimizer
from framework.tasks import LanguageModelingTask


def test_train_loss_is_logged_only_on_the_steps_the_loggers_write_and_the_last():
    torch.manual_seed(0)
    task = LanguageModelingTask(
        GPT(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16),
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.1},
        scheduler={"_target_": "framework.optim.constant", "warmup_steps": 0},
    )
    logged_at = []
    log = task.log
    task.log = lambda name, value, **options: (logged_at.append((name, task.global_step + 1)), log(name, value, **options))
    tokens = np.random.default_rng(0).integers(0, 17, size=400).astype(np.uint16)
    data = LanguageModelingDataModule(tokens, tokens[:50], block_size=8, batch_size=2, num_train_samples=20, seed=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=10,
        log_every_n_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=data)
    assert [step for name, step in logged_at if name == "train/loss"] == [3, 6, 9, 10]
    assert set(trainer.callback_metrics) == {"train/loss"}


def test_progress_bar_updates_at_most_refresh_rate_times_a_second_and_at_the_last_batch(monkeypatch):
    clock = iter([0.0, 0.1, 0.2, 0.26, 0.3, 0.4, 0.45])  # seconds, one per batch
    monkeypatch.setattr("framework.callbacks.progress_bar.time.monotonic", lambda: next(clock))
    updated = []
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", lambda self, trainer, module, outputs, batch, index: updated.append(index))
    bar = StepProgressBar(refresh_rate=4)
    trainer = SimpleNamespace(num_training_batches=1000, max_steps=7, global_step=0)
    for index in range(7):
        trainer.global_step = index + 1
        bar.on_train_batch_end(trainer, None, None, None, index)
    assert updated == [0, 3, 6]  # t = 0, the first time >= 0.25 s later, and the last step

    StepProgressBar(refresh_rate=0).on_train_batch_end(trainer, None, None, None, 0)  # disabled: no update, no error
    assert updated == [0, 3, 6]


def test_fused_adamw_of_the_config_matches_the_loop_implementation(project_root):
    """conf/optimizer/adamw.yaml asks for torch's fused AdamW: the same update, to rounding."""
    config = OmegaConf.load(project_root / "conf" / "optimizer" / "adamw.yaml")
    assert config.fused is True
    weights, losses = {}, {}
    for fused in (True, False):
        torch.manual_seed(0)
        model = GPT(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16)
        initial = torch.cat([parameter.detach().flatten() for parameter in model.parameters()])
        optimizer = build_optimizer(model, {**config, "lr": 1e-2, "fused": fused})
        assert optimizer.defaults["fused"] is fused
        generator = torch.Generator().manual_seed(1)
        losses[fused], weights[fused] = [], []
        for _ in range(20):
            ids = torch.randint(0, 17, (4, 9), generator=generator)
            loss = torch.nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses[fused].append(loss.item())
            weights[fused].append(torch.cat([parameter.detach().flatten() for parameter in model.parameters()]))
    assert (weights[True][0] - weights[False][0]).abs().max() < 1e-6  # one step: rounding only
    # 20 steps of lr 1e-2 move the weights by up to 0.2; the two differ by 1e-4 (rounding grown through the net)
    assert (weights[True][-1] - initial).abs().max() > 0.1
    assert (weights[True][-1] - weights[False][-1]).abs().max() < 1e-3
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


def test_bf16_mixed_clips_gradients_for_a_fused_optimizer():
    """Lightning refuses clipping with fused optimizers under any mixed precision; bf16 has no
    gradient scaler, so the task clips: one fused SGD step (lr 1, no momentum) moves the weights
    by exactly the clipped gradient norm."""
    torch.manual_seed(0)
    task = LanguageModelingTask(
        GPT(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16),
        optimizer={"_target_": "torch.optim.SGD", "lr": 1.0, "fused": True},
        scheduler={"_target_": "framework.optim.constant", "warmup_steps": 0},
    )
    before = torch.cat([p.detach().flatten().clone() for p in task.parameters()])
    tokens = np.random.default_rng(0).integers(0, 17, size=400).astype(np.uint16)
    data = LanguageModelingDataModule(tokens, tokens[:50], block_size=8, batch_size=2, num_train_samples=2, seed=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        precision="bf16-mixed",
        gradient_clip_val=1e-3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=data)
    after = torch.cat([p.detach().flatten() for p in task.parameters()])
    assert torch.linalg.vector_norm(after - before).item() == pytest.approx(1e-3, rel=1e-3)
