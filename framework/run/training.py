"""One training run from a composed config: recipe (data, tokenizer, model, task) -> Trainer -> fit.

The task-specific half is a recipe (``framework.run.recipes``); checking, resuming, the
Trainer, tracking and the run record are the same for every task. The training command
(``framework.cli.train``) calls :func:`train`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
import pytorch_lightning as pl
from lightning_fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

from framework.callbacks import (
    CheckpointOnSigterm,
    LogAtGlobalStep,
    RunMetadataInCheckpoint,
    SeedEachBatch,
    ValidateAtLastStep,
    build_callbacks,
)
from framework.checkpointing import (
    AtomicCheckpointIO,
    check_architecture,
    check_parameter_groups,
    check_resume_compatible,
    last_checkpoint_path,
    read_checkpoint_summary,
    resume_checkpoint,
)
from framework.logger import best_logged_value, build_loggers, define_wandb_metrics, finish_loggers, log_sample, update_run_facts
from framework.optim import FineTuning, configured_groups
from framework.run import record as run_record
from framework.run.pretrained import load_pretrained, pretrained_start
from framework.run.recipes import Recipe, recipe_for, steps_per_epoch
from framework.run.schema import validate_config
from framework.run.stored_config import make_paths_absolute, portable_config
from framework.strategy.launch import requested_processes
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


def build_trainer(cfg: DictConfig, run_dir: Path, recipe: Recipe, resume_step: int | None = None) -> pl.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` with the configured loggers and callbacks.

    The framework's own callbacks are always added: the step axis of logged metrics (first),
    validation at the last step, a checkpoint on SIGTERM, per-batch seeding (see SeedEachBatch)
    and run metadata in checkpoints (the config in its portable form, the tokenizer, the
    recipe's metadata). Checkpoints are written atomically. ``trainer.max_epochs`` has become
    ``max_steps`` (:func:`fit_epochs`), so Lightning gets none.
    """
    core_callbacks = [
        ValidateAtLastStep(),
        CheckpointOnSigterm(last_checkpoint_path(run_dir)),
        SeedEachBatch(cfg.seed),
        RunMetadataInCheckpoint(
            run_config=portable_config(cfg),
            tokenizer_json=recipe.tokenizer.to_str(),
            tokenizer_sha256=recipe.tokenizer_sha256,
            **recipe.checkpoint_metadata(),
        ),
    ]
    configured = build_callbacks(cfg.callbacks, hydra.utils.get_class(cfg.task._target_).METRICS)
    return hydra.utils.instantiate(
        cfg.trainer,
        max_epochs=None,
        logger=build_loggers(run_dir, cfg.logger, resume_step),
        callbacks=[LogAtGlobalStep(), *configured, *core_callbacks],
        plugins=[AtomicCheckpointIO()],
        # callbacks.progress=null means no progress display, not Lightning's default bar
        enable_progress_bar=any(isinstance(callback, ProgressBar) for callback in configured),
    )


def fit_epochs(cfg: DictConfig, recipe: Recipe) -> None:
    """With ``trainer.max_epochs`` set, write the run's length into ``trainer.max_steps`` (and
    ``trainer.check_val_every_n_epoch`` into ``val_check_interval``): the training loader is
    one pass of ``max_steps`` batches, so Lightning's own epoch settings would not apply. An
    epoch is the recipe's ``samples_per_epoch`` (every training example once; for language
    modelling as many windows as the training split has ``block_size`` tokens). As in
    Lightning, both limits apply: a positive ``trainer.max_steps`` below the epochs' steps ends
    the run there (recipes given in epochs set ``max_steps: -1``)."""
    epochs = cfg.trainer.get("max_epochs")
    if epochs is None:
        return
    per_epoch = steps_per_epoch(recipe.samples_per_epoch(), cfg, requested_processes(cfg.trainer))
    steps = epochs * per_epoch if cfg.trainer.max_steps <= 0 else min(epochs * per_epoch, cfg.trainer.max_steps)
    log.info("trainer.max_epochs=%d: %d optimizer steps per epoch; the run takes %d.", epochs, per_epoch, steps)
    cfg.trainer.max_steps = steps
    every = cfg.trainer.get("check_val_every_n_epoch")
    if every is not None:
        cfg.trainer.val_check_interval = every * per_epoch * cfg.trainer.accumulate_grad_batches
        cfg.trainer.check_val_every_n_epoch = None


def optimizer_group_names(model: nn.Module, cfg: DictConfig) -> list[str]:
    """The names of the parameter groups the run's optimizer will have (``framework.optim``)."""
    finetune = FineTuning(**(cfg.get("finetune") or {}))
    return [group["name"] for group in configured_groups(model, OmegaConf.to_container(cfg.optimizer, resolve=True), finetune)]


def fill_model_arguments(cfg: DictConfig, recipe: Recipe) -> None:
    """Write the model sizes the data decided (``vocab_size``, ``num_outputs``) into ``cfg.model``,
    so the run record, the checkpoints and the tracker hold the real values."""
    for key, value in recipe.model_arguments().items():
        cfg.model[key] = value


def train(cfg: DictConfig) -> TrainingResult | None:
    """Check ``cfg`` completely (``framework.run.schema``), then :func:`train_checked`.

    Raises:
        ConfigError: ``cfg`` breaks a rule, before any data is read.
    """
    validate_config(cfg)
    return train_checked(cfg)


def train_checked(cfg: DictConfig) -> TrainingResult | None:
    """Run the whole chain for a checked ``cfg``; return the final validation metrics and the objective.

    The config's paths are made absolute first. The objective is the
    best value of ``cfg.optimized_metric`` over the run's evaluations (lowest for losses), read
    back from ``metrics.csv``; a sample is generated at the end and logged (W&B table,
    ``samples.txt``). A run directory that holds ``last.ckpt`` resumes from it
    (``resume=auto``); a resumed run that already reached ``max_steps`` returns None without
    training.

    Raises:
        UserInputError: (and subclasses) for bad config, data or checkpoints, before training.
        TrainingDivergedError: a non-finite loss with ``callbacks.nonfinite_loss.policy=stop``.
    """
    make_paths_absolute(cfg)
    run_dir = Path(cfg.paths.run_dir)
    checkpoint_path = resume_checkpoint(cfg.resume, run_dir)
    checkpoint = read_checkpoint_summary(checkpoint_path) if checkpoint_path else None
    resume_step = checkpoint["global_step"] if checkpoint else None
    if cfg.trainer.get("max_epochs") is None and _nothing_to_do(checkpoint_path, resume_step, cfg):
        return None
    pretrained, tokenizer = pretrained_start(cfg, checkpoint)
    recipe = recipe_for(cfg, tokenizer=tokenizer)
    fit_epochs(cfg, recipe)
    if _nothing_to_do(checkpoint_path, resume_step, cfg):
        return None
    fill_model_arguments(cfg, recipe)
    pl.seed_everything(cfg.seed, workers=True)
    model = recipe.model()
    if checkpoint:
        check_architecture(model, checkpoint["state_dict"])
        check_parameter_groups(checkpoint, optimizer_group_names(model, cfg))
        check_resume_compatible(checkpoint, OmegaConf.to_container(cfg, resolve=True), recipe.tokenizer_sha256)
        log.info("Resuming from %s at step %d", checkpoint_path, resume_step)
    elif pretrained is not None:
        load_pretrained(model, pretrained)
    del checkpoint, pretrained
    is_rank_zero = rank_zero_only.rank == 0  # only the first process writes files
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero:
        recipe.tokenizer.save(str(run_dir / "tokenizer.json"))
    record = run_record.start_record(run_dir, cfg, resume_step, sum(p.numel() for p in model.parameters()), write=is_rank_zero)
    task = recipe.task(model)
    trainer = build_trainer(cfg, run_dir, recipe, resume_step)
    datamodule = recipe.datamodule(trainer.world_size)
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "run": run_record.facts(record)})
    define_wandb_metrics(trainer.loggers, task.METRICS)

    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint_path, weights_only=True)
        sample = recipe.sample(task.model)
        if is_rank_zero and sample is not None:
            log_sample(trainer.loggers, run_dir, trainer.global_step, cfg.sample.prompt, sample)
    except BaseException as error:
        status = "interrupted" if isinstance(error, SIGTERMException) else "failed"
        run_record.end_record(run_dir, record, status, error, write=is_rank_zero)
        update_run_facts(trainer.loggers, run_record.facts(record))
        finish_loggers(trainer.loggers, failed=True)
        raise
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
    checkpoint_callback = trainer.checkpoint_callback
    best_checkpoint = getattr(checkpoint_callback, "best_model_path", None) or None
    processes = gather_process_facts(trainer.global_rank, cfg, best_checkpoint)
    objective = best_logged_value(run_dir / "metrics.csv", cfg.optimized_metric, task.METRICS[cfg.optimized_metric])
    run_record.finish_record(
        run_dir,
        record,
        trainer.global_step,
        metrics,
        objective={cfg.optimized_metric: objective},
        processes=processes,
        write=is_rank_zero,
    )
    update_run_facts(trainer.loggers, run_record.facts(record))
    finish_loggers(trainer.loggers)
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


def _nothing_to_do(checkpoint_path: Path | None, resume_step: int | None, cfg: DictConfig) -> bool:
    if resume_step is None or resume_step < cfg.trainer.max_steps:
        return False
    log.info(
        "%s is at step %d, which reaches trainer.max_steps=%d: nothing to do. Raise trainer.max_steps to train further.",
        checkpoint_path,
        resume_step,
        cfg.trainer.max_steps,
    )
    return True
