"""Downstream tasks during training: lm-evaluation-harness accuracy next to the loss curve."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from tokenizers import Tokenizer

from framework.harness.evaluation import HarnessSettings, HarnessTasks, find_tasks, run_tasks

SETTING = "callbacks.downstream"
Result = TypeVar("Result")


class DownstreamEvaluation(Callback):
    """Score harness tasks during training and log ``eval/<task>/acc`` (and ``acc_norm`` where
    the task has it) at the optimizer step of the weights scored.

    With ``every_n_steps`` null the tasks run after each validation (the same steps as
    ``val/loss``, the last one included); with N, every N optimizer steps and at the last step.
    The tasks are found and their data loaded when training starts. The first process scores
    the whole of each task while the others wait, so under DDP the figures are one process's
    figures for the same weights; an error there stops every process. A compiled model runs
    eagerly here (each request length would compile anew).

    Args:
        tasks: harness task names, ``shipped`` for the framework's own; empty: the callback does nothing.
        every_n_steps: optimizer steps between evaluations (>= 1), or None: with each validation.
        tokenizer: the run's ``tokenizer.json`` (written before training starts).
        block_size: the model's context, in tokens (``data.block_size``; None for data without one,
            which the config check refuses when ``tasks`` is set).
        shakespeare, include_path, limit, batch_size, cache_dir: as
            :class:`~framework.harness.evaluation.HarnessSettings`.
    """

    def __init__(
        self,
        tasks: list[str],
        every_n_steps: int | None,
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
        self.evaluated_step = 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.settings.tasks and stage == "fit":
            self.tasks = self._on_first_process(trainer, lambda: find_tasks(self.settings, SETTING))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_steps is None and trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._evaluate_now(trainer, pl_module)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if self.every_n_steps is not None and (step % self.every_n_steps == 0 or step == trainer.max_steps):
            self._evaluate_now(trainer, pl_module)

    def _evaluate_now(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Score the weights of the current step once (micro-batches of an accumulated step share it)."""
        step = trainer.global_step
        if not self.settings.tasks or step == self.evaluated_step:
            return
        self.evaluated_step = step
        metrics = self._on_first_process(trainer, lambda: self.evaluate(pl_module))
        for logger in trainer.loggers if trainer.is_global_zero else []:
            logger.log_metrics(metrics, step=step)

    @staticmethod
    def _on_first_process(trainer: Trainer, work: Callable[[], Result]) -> Result | None:
        """``work()`` on the first process; the others wait for it, and every process raises
        if it failed there (they would otherwise wait at their next collective until its
        time-out)."""
        result, error = None, None
        if trainer.is_global_zero:
            try:
                result = work()
            except Exception as exception:  # re-raised below, after the other processes learn of it
                error = exception
        failed = trainer.strategy.broadcast(error is not None, src=0)
        if error is not None:
            raise error
        if failed:
            raise RuntimeError(f"{SETTING} failed on the first process; its error is in that process's output.")
        return result

    def evaluate(self, pl_module: LightningModule) -> dict[str, float]:
        """``{"eval/<task>/<acc|acc_norm>": value}`` of the model as it is now."""
        from framework.harness.model import HarnessModel

        tokenizer = Tokenizer.from_file(self.tokenizer_path)
        model = HarnessModel(pl_module.model, tokenizer, self.block_size, self.settings.batch_size, pl_module.device)
        with torch.compiler.set_stance("force_eager"):
            results = run_tasks(model, self.tasks, self.settings.limit)
        return {f"eval/{task}/{name}": values[name] for task, values in results.items() for name in ("acc", "acc_norm") if name in values}
