"""One training run from a composed config: corpus -> tokenizer -> model -> task -> Trainer.

Each ``build_*`` function does one step of the chain in ``conf/train.yaml``'s order; the Hydra
entry point (``framework.train``) calls :func:`train`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra.utils
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

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
from framework.data import LanguageModelingDataModule, TokenizedCorpus, check_split_length, prepare_corpus
from framework.errors import ConfigError
from framework.logger import best_logged_value, build_loggers, define_wandb_metrics, finish_loggers, log_sample
from framework.report import sample_text
from framework.schema import validate_config
from framework.strategy.processes import gather_process_facts
from framework.tokenizer import characters_per_token

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a finished run hands back: final validation metrics and where things are."""

    metrics: dict[str, float]
    objective: float
    sample: str
    run_dir: Path
    best_checkpoint: str | None
    last_checkpoint: str | None
    trainer: pl.Trainer
    task: pl.LightningModule
    corpus: TokenizedCorpus


def build_corpus(cfg: DictConfig) -> TokenizedCorpus:
    """Read ``cfg.data.source``, clean, split, train the tokenizer and fill the token cache."""
    documents = hydra.utils.instantiate(cfg.data.source).read()
    corpus = prepare_corpus(
        documents,
        cleaning=list(cfg.data.cleaning),
        val_fraction=cfg.data.val_fraction,
        train_tokenizer=hydra.utils.instantiate(cfg.tokenizer),
        tokenizer_config=OmegaConf.to_container(cfg.tokenizer, resolve=True),
        cache_dir=cfg.paths.cache_dir,
    )
    for split in ("train", "val"):
        check_split_length(split, corpus.meta["tokens"][split], cfg.data.block_size)
    return corpus


def build_model(cfg: DictConfig, tokenizer_vocab_size: int) -> nn.Module:
    """Instantiate ``cfg.model``; ``model.vocab_size: null`` takes the tokenizer's size.

    Raises:
        ConfigError: ``model.vocab_size`` smaller than the tokenizer's vocabulary.
    """
    vocab_size = cfg.model.vocab_size or tokenizer_vocab_size
    if vocab_size < tokenizer_vocab_size:
        raise ConfigError(
            f"model.vocab_size={vocab_size} is smaller than the tokenizer's vocabulary of "
            f"{tokenizer_vocab_size} ids; set model.vocab_size=null or at least {tokenizer_vocab_size}."
        )
    return hydra.utils.instantiate(cfg.model, vocab_size=vocab_size)


def build_datamodule(cfg: DictConfig, corpus: TokenizedCorpus, world_size: int = 1) -> LanguageModelingDataModule:
    """Windows over the cached splits; enough training samples for exactly ``max_steps`` steps
    on ``world_size`` processes (each takes every ``world_size``-th sample)."""
    trainer = cfg.trainer
    return LanguageModelingDataModule(
        train_tokens=corpus.tokens("train"),
        val_tokens=corpus.tokens("val"),
        block_size=cfg.data.block_size,
        batch_size=cfg.data.batch_size,
        num_train_samples=trainer.max_steps * trainer.accumulate_grad_batches * cfg.data.batch_size * world_size,
        seed=cfg.seed,
        num_workers=cfg.data.num_workers,
    )


def build_task(cfg: DictConfig, model: nn.Module, corpus: TokenizedCorpus) -> pl.LightningModule:
    """Instantiate ``cfg.task`` around ``model``; optimizer and scheduler stay configs until fit."""
    return hydra.utils.instantiate(
        cfg.task,
        model=model,
        optimizer=cfg.optimizer,
        scheduler=cfg.scheduler,
        characters_per_token=torch.from_numpy(characters_per_token(corpus.tokenizer)),
        _recursive_=False,
    )


def build_trainer(
    cfg: DictConfig, run_dir: Path, corpus: TokenizedCorpus, resume_step: int | None = None
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
            tokenizer_json=corpus.tokenizer.to_str(),
            tokenizer_sha256=corpus.meta["tokenizer_sha256"],
        ),
    ]
    return hydra.utils.instantiate(
        cfg.trainer,
        logger=build_loggers(run_dir, cfg.logger, resume_step),
        callbacks=[*build_callbacks(cfg.callbacks), *core_callbacks],
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
    corpus = build_corpus(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    model = build_model(cfg, corpus.vocab_size)
    if checkpoint:
        check_architecture(model, checkpoint["state_dict"])
        check_resume_compatible(checkpoint, OmegaConf.to_container(cfg, resolve=True), corpus.meta["tokenizer_sha256"])
        log.info("Resuming from %s at step %d", checkpoint_path, resume_step)
    del checkpoint
    is_rank_zero = rank_zero_only.rank == 0  # only the first process writes files
    if is_rank_zero:
        shutil.copyfile(corpus.directory / "tokenizer.json", run_dir / "tokenizer.json")
    record = run_record.start_record(run_dir, cfg, resume_step, sum(p.numel() for p in model.parameters()), write=is_rank_zero)
    task = build_task(cfg, model, corpus)
    trainer = build_trainer(cfg, run_dir, corpus, resume_step)
    datamodule = build_datamodule(cfg, corpus, world_size=trainer.world_size)
    run_facts = {key: value for key, value in record.items() if key != "config"}
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "run": run_facts})
    define_wandb_metrics(trainer.loggers)

    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint_path, weights_only=True)
        sample = sample_text(task.model, corpus.tokenizer, **cfg.sample, seed=cfg.seed)
        if is_rank_zero:
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
        corpus=corpus,
    )
