"""Downstream tasks during training: lm-evaluation-harness accuracy next to the loss curve."""

from __future__ import annotations

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from tokenizers import Tokenizer

from framework.harness.evaluation import HarnessSettings, HarnessTasks, find_tasks, run_tasks


class DownstreamEvaluation(Callback):
    """Run harness tasks every ``every_n_steps`` optimizer steps and at the last step, and log
    ``eval/<task>/acc`` (and ``acc_norm`` where the task has it) at that step.

    The first process evaluates the whole of each task while the others wait at a barrier, so
    the figures under DDP are one process's figures for the same weights. A compiled model runs
    eagerly here (each request length would compile anew).

    Args:
        tasks: harness task names, ``shipped`` for the framework's own; empty: the callback does nothing.
        every_n_steps: optimizer steps between evaluations (>= 1).
        tokenizer: the run's ``tokenizer.json`` (written before training starts).
        block_size: the model's context, in tokens (``data.block_size``; None for data without one,
            which the config check refuses when ``tasks`` is set).
        shakespeare, include_path, limit, batch_size, cache_dir: as
            :class:`~framework.harness.evaluation.HarnessSettings`.
    """

    def __init__(
        self,
        tasks: list[str],
        every_n_steps: int,
        tokenizer: str,
        block_size: int | None,
        shakespeare: str | None = None,
        include_path: str | None = None,
        limit: int | None = None,
        batch_size: int = 32,
        cache_dir: str = "~/.cache/lm-framework",
    ) -> None:
        self.settings = HarnessSettings(list(tasks), shakespeare, include_path, limit, batch_size, cache_dir)
        self.every_n_steps, self.tokenizer_path, self.block_size = every_n_steps, tokenizer, block_size
        self.tasks: HarnessTasks | None = None
        self.evaluated_step = -1

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.settings.tasks and trainer.is_global_zero:
            self.tasks = find_tasks(self.settings, "callbacks.downstream")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        due = step % self.every_n_steps == 0 or step == trainer.max_steps
        if not self.settings.tasks or not due or step == self.evaluated_step or step == 0:
            return
        self.evaluated_step = step
        if trainer.is_global_zero:
            metrics = self.evaluate(pl_module)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
        trainer.strategy.barrier("downstream evaluation")

    def evaluate(self, pl_module: LightningModule) -> dict[str, float]:
        """``{"eval/<task>/<acc|acc_norm>": value}`` of the model as it is now."""
        from framework.harness.model import HarnessModel

        model = pl_module.model
        was_training = model.training
        harness_model = HarnessModel(
            model, Tokenizer.from_file(self.tokenizer_path), self.block_size, self.settings.batch_size, pl_module.device
        )
        with torch.compiler.set_stance("force_eager"):
            results = run_tasks(harness_model, self.tasks, self.settings.limit)
        model.train(was_training)
        return {f"eval/{task}/{name}": values[name] for task, values in results.items() for name in ("acc", "acc_norm") if name in values}
