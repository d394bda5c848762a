"""One training run from a composed config: corpus -> tokenizer -> model -> task -> Trainer.

Each ``build_*`` function does one step of the chain in ``conf/train.yaml``'s order; the Hydra
entry point (``framework.train``) only calls :func:`train`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from torch import nn

from framework.callbacks import build_callbacks
from framework.data import LanguageModelingDataModule, TokenizedCorpus, check_split_length, prepare_corpus
from framework.logger import build_loggers, finish_loggers

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a finished run hands back: final validation metrics and where things are."""

    metrics: dict[str, float]
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
        ValueError: ``model.vocab_size`` smaller than the tokenizer's vocabulary.
    """
    vocab_size = cfg.model.vocab_size or tokenizer_vocab_size
    if vocab_size < tokenizer_vocab_size:
        raise ValueError(
            f"model.vocab_size={vocab_size} is smaller than the tokenizer's vocabulary of "
            f"{tokenizer_vocab_size} ids; set model.vocab_size=null or at least {tokenizer_vocab_size}."
        )
    return hydra.utils.instantiate(cfg.model, vocab_size=vocab_size)


def build_datamodule(cfg: DictConfig, corpus: TokenizedCorpus) -> LanguageModelingDataModule:
    """Windows over the cached splits; enough training samples for exactly ``max_steps`` steps."""
    trainer = cfg.trainer
    return LanguageModelingDataModule(
        train_tokens=corpus.tokens("train"),
        val_tokens=corpus.tokens("val"),
        block_size=cfg.data.block_size,
        batch_size=cfg.data.batch_size,
        num_train_samples=trainer.max_steps * trainer.accumulate_grad_batches * cfg.data.batch_size,
        seed=cfg.seed,
        num_workers=cfg.data.num_workers,
    )


def build_task(cfg: DictConfig, model: nn.Module, corpus: TokenizedCorpus) -> pl.LightningModule:
    """Instantiate ``cfg.task`` around ``model``; optimizer and scheduler stay configs until fit."""
    tokens_per_char = corpus.meta["tokens"]["val"] / corpus.meta["characters"]["val"]
    return hydra.utils.instantiate(
        cfg.task,
        model=model,
        optimizer=cfg.optimizer,
        scheduler=cfg.scheduler,
        val_tokens_per_char=tokens_per_char,
        _recursive_=False,
    )


def build_trainer(cfg: DictConfig, run_dir: Path) -> pl.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` with the configured loggers and callbacks."""
    return hydra.utils.instantiate(
        cfg.trainer,
        logger=build_loggers(run_dir, cfg.logger),
        callbacks=build_callbacks(cfg.callbacks),
    )


def train(cfg: DictConfig) -> TrainingResult:
    """Run the whole chain for ``cfg`` and return the final validation metrics.

    Validation runs at the last step even when ``val_check_interval`` does not divide it, so
    the reported metrics always describe the final weights.
    """
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)

    corpus = build_corpus(cfg)
    shutil.copyfile(corpus.directory / "tokenizer.json", run_dir / "tokenizer.json")
    model = build_model(cfg, corpus.vocab_size)
    datamodule = build_datamodule(cfg, corpus)
    task = build_task(cfg, model, corpus)
    trainer = build_trainer(cfg, run_dir)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(task, datamodule=datamodule)
    if task.last_val_step != trainer.global_step:
        trainer.validate(task, datamodule=datamodule, verbose=False)
    finish_loggers(trainer.loggers)
    checkpoint = trainer.checkpoint_callback
    return TrainingResult(
        metrics={name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")},
        run_dir=run_dir,
        best_checkpoint=getattr(checkpoint, "best_model_path", None) or None,
        last_checkpoint=getattr(checkpoint, "last_model_path", None) or None,
        trainer=trainer,
        task=task,
        corpus=corpus,
    )
