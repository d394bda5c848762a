"""One training run from a composed config: recipe (data, tokenizer, model, task) -> Trainer -> fit.

The task-specific half is a recipe (``framework.recipes``); checking, resuming, the Trainer,
tracking and the run record are the same for every task. The Hydra entry point
(``framework.train``) calls :func:`train`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra.utils
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from tokenizers import Tokenizer

from framework import run_record
from framework.callbacks import (
    CheckpointOnSigterm,
    RunMetadataInCheckpoint,
    SeedEachBatch,
    ValidateAtLastStep,
    build_callbacks,
)
from framework.checkpointing import (
    AtomicCheckpointIO,
    check_architecture,
    check_resume_compatible,
    last_checkpoint_path,
    read_checkpoint_summary,
    resume_checkpoint,
)
from framework.logger import best_logged_value, build_loggers, define_wandb_metrics, finish_loggers, log_sample
from framework.recipes import Recipe, recipe_for
from framework.schema import validate_config
from framework.strategy.processes import gather_process_facts

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a finished run hands back: final validation metrics and where things are."""

    metrics: dict[str, float]
    objective: float
    sample: str | None
    run_dir: Path
    best_checkpoint: str | None
    last_checkpoint: str | None
    trainer: pl.Trainer
    task: pl.LightningModule
    recipe: Recipe


def build_trainer(
    cfg: DictConfig, run_dir: Path, tokenizer: Tokenizer, tokenizer_sha256: str, resume_step: int | None = None, **recipe_metadata: Any
) -> pl.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` with the configured loggers and callbacks.

    The framework's own callbacks are always added: validation at the last step, a checkpoint
    on SIGTERM, per-batch seeding (see SeedEachBatch) and run metadata in checkpoints.
    Checkpoints are written atomically.
    """
    core_callbacks = [
        ValidateAtLastStep(),
        CheckpointOnSigterm(last_checkpoint_path(run_dir)),
        SeedEachBatch(cfg.seed),
        RunMetadataInCheckpoint(
            run_config=OmegaConf.to_container(cfg, resolve=True),
            tokenizer_json=tokenizer.to_str(),
            tokenizer_sha256=tokenizer_sha256,
            **recipe_metadata,
        ),
    ]
    return hydra.utils.instantiate(
        cfg.trainer,
        logger=build_loggers(run_dir, cfg.logger, resume_step),
        callbacks=[*build_callbacks(cfg.callbacks, hydra.utils.get_class(cfg.task._target_).METRICS), *core_callbacks],
        plugins=[AtomicCheckpointIO()],
    )


def _resume_state(cfg: DictConfig, run_dir: Path) -> tuple[Path | None, dict[str, Any] | None]:
    path = resume_checkpoint(cfg.resume, run_dir)
    return path, (read_checkpoint_summary(path) if path else None)


def train(cfg: DictConfig) -> TrainingResult | None:
    """Run the whole chain for ``cfg``; return the final validation metrics and the objective.

    The objective is the best value of ``cfg.optimized_metric`` over the run's evaluations
    (lowest for losses), read back from ``metrics.csv``; a sample is generated at the end and
    logged (W&B table, ``samples.txt``).

    The config is checked completely first. A run directory that holds ``last.ckpt`` resumes
    from it (``resume=auto``); a resumed run that already reached ``max_steps`` returns None
    without training.

    Raises:
        UserInputError: (and subclasses) for bad config, data or checkpoints, before training.
        TrainingDivergedError: a non-finite loss with ``task.on_nonfinite_loss=stop``.
    """
    validate_config(cfg)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path, checkpoint = _resume_state(cfg, run_dir)
    resume_step = checkpoint["global_step"] if checkpoint else None
    if resume_step is not None and resume_step >= cfg.trainer.max_steps:
        log.info(
            "%s is at step %d, which reaches trainer.max_steps=%d: nothing to do. Raise trainer.max_steps "
            "to train further.",
            checkpoint_path,
            resume_step,
            cfg.trainer.max_steps,
        )
        return None
    recipe = recipe_for(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    model = recipe.model()
    if checkpoint:
        check_architecture(model, checkpoint["state_dict"])
        check_resume_compatible(checkpoint, OmegaConf.to_container(cfg, resolve=True), recipe.tokenizer_sha256)
        log.info("Resuming from %s at step %d", checkpoint_path, resume_step)
    del checkpoint
    is_rank_zero = rank_zero_only.rank == 0  # only the first process writes files
    if is_rank_zero:
        recipe.tokenizer.save(str(run_dir / "tokenizer.json"))
    record = run_record.start_record(run_dir, cfg, resume_step, sum(p.numel() for p in model.parameters()), write=is_rank_zero)
    task = recipe.task(model)
    trainer = build_trainer(cfg, run_dir, recipe.tokenizer, recipe.tokenizer_sha256, resume_step, **recipe.checkpoint_metadata())
    datamodule = recipe.datamodule(trainer.world_size)
    run_facts = {key: value for key, value in record.items() if key != "config"}
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "run": run_facts})
    define_wandb_metrics(trainer.loggers, task.METRICS)

    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint_path, weights_only=True)
        sample = recipe.sample(task.model)
        if is_rank_zero and sample is not None:
            log_sample(trainer.loggers, run_dir, trainer.global_step, cfg.sample.prompt, sample)
    except BaseException as error:
        status = "interrupted" if isinstance(error, SIGTERMException) else "failed"
        run_record.end_record(run_dir, record, status, error, write=is_rank_zero)
        raise
    finally:
        finish_loggers(trainer.loggers)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
    checkpoint_callback = trainer.checkpoint_callback
    best_checkpoint = getattr(checkpoint_callback, "best_model_path", None) or None
    processes = gather_process_facts(trainer.global_rank, cfg, best_checkpoint)
    objective = best_logged_value(run_dir / "metrics.csv", cfg.optimized_metric, task.METRICS[cfg.optimized_metric])
    run_record.finish_record(
        run_dir, record, trainer.global_step, metrics, objective={cfg.optimized_metric: objective}, processes=processes,
        write=is_rank_zero,
    )
    return TrainingResult(
        metrics=metrics,
        objective=objective,
        sample=sample,
        run_dir=run_dir,
        best_checkpoint=best_checkpoint,
        last_checkpoint=getattr(checkpoint_callback, "last_model_path", None) or None,
        trainer=trainer,
        task=task,
        recipe=recipe,
    )
