"""What a task needs before training: data, tokenizer, model, task module, DataModule.

One recipe per task kind (``TrainingTask.KIND`` of the class ``conf/task`` selects; the models
that fit it declare the same ``TASK_KIND``): :class:`LanguageModelingRecipe` (token cache and
windows) and :class:`ClassificationRecipe` (labelled files, fixed-length examples). The
training loop (``framework.run.training``) is the same for both.
"""

from __future__ import annotations

import math
from typing import Protocol

import hydra.utils
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from tokenizers import Tokenizer
from torch import nn

from framework.data import LanguageModelingDataModule, TokenizedCorpus, check_split_length, prepare_corpus
from framework.data.classification_datamodule import ClassificationDataModule, EncodedSplit
from framework.data.labelled import LabelledTextFiles, encode_padded, label_ids, label_names, pad_id
from framework.data.masking import MaskedLanguageDataModule, masking_scheme
from framework.data.prepared import MixtureDataModule, PreparedCorpus, PreparedMixture
from framework.errors import CheckpointMismatchError, ConfigError, DataError
from framework.run.kinds import prepared_data, task_kind
from framework.run.report import sample_texts
from framework.tokenizer import FILE_TOKENIZER, bytes_per_token, characters_per_token, tokenizer_hash


class Recipe(Protocol):
    """The task-specific half of a run; built from the config, it prepares the data at once."""

    tokenizer: Tokenizer
    tokenizer_sha256: str

    def model_arguments(self) -> dict[str, int]: ...
    def checkpoint_metadata(self) -> dict: ...
    def samples_per_epoch(self) -> int: ...
    def model(self) -> nn.Module: ...
    def task(self, model: nn.Module) -> pl.LightningModule: ...
    def datamodule(self, world_size: int) -> pl.LightningDataModule: ...
    def sample(self, model: nn.Module) -> str | None: ...


def recipe_for(cfg: DictConfig, trained: dict | None = None, tokenizer: Tokenizer | None = None) -> Recipe:
    """The recipe of ``cfg``'s task kind.

    ``trained`` (a checkpoint's ``tokenizer_json`` and metadata) reuses a finished run's
    tokenizer and classes instead of deriving them from the training data, for evaluation.
    ``tokenizer`` (a pretrained model's, ``model.init_from``) trains with that tokenizer
    instead of one trained on the data.
    """
    if trained is not None:
        return RECIPES[task_kind(cfg)].for_config(cfg, trained)
    return RECIPES[task_kind(cfg)](cfg, tokenizer)


def training_samples(cfg: DictConfig, world_size: int) -> int:
    """Samples the run trains on, all processes together: steps x accumulation x batch x processes."""
    return cfg.trainer.max_steps * cfg.trainer.accumulate_grad_batches * cfg.data.batch_size * world_size


def steps_per_epoch(samples_per_epoch: int, cfg: DictConfig, world_size: int) -> int:
    """Optimizer steps per epoch of ``samples_per_epoch`` samples: one per ``batch_size x
    accumulate_grad_batches x world_size`` samples, rounded up (Keras' steps per epoch). Batches
    are always full: the last step of an epoch takes the first samples of the next epoch's
    order, so epoch boundaries drift by under one step's samples per epoch."""
    return math.ceil(samples_per_epoch / (cfg.data.batch_size * cfg.trainer.accumulate_grad_batches * world_size))


def build_corpus(cfg: DictConfig, tokenizer: Tokenizer | None = None) -> TokenizedCorpus | PreparedCorpus:
    """Read ``cfg.data.source``, clean, split, train the tokenizer and fill the token cache; or
    open the prepared dataset ``data=prepared`` names.

    With ``tokenizer`` (a finished run's, or that of the run a new one starts from), that tokenizer
    encodes the text instead of a newly trained one: the entry its own training made under
    ``cfg.tokenizer`` is read when its tokenizer is this one, else an entry keyed by its hash.
    """
    if prepared_data(cfg.data):
        return open_prepared(cfg, tokenizer)
    documents = hydra.utils.instantiate(cfg.data.source).read()
    if tokenizer is None and cfg.tokenizer._target_ == FILE_TOKENIZER:  # keyed by the file's contents, not its path
        tokenizer = hydra.utils.instantiate(cfg.tokenizer)()
    if tokenizer is None:
        train_tokenizer, tokenizer_config = hydra.utils.instantiate(cfg.tokenizer), OmegaConf.to_container(cfg.tokenizer, resolve=True)
    else:
        train_tokenizer, tokenizer_config = (lambda _train_text: tokenizer), {"trained_tokenizer": tokenizer_hash(tokenizer)}
    trained_from = None
    if tokenizer is not None and cfg.tokenizer._target_ != FILE_TOKENIZER:
        trained_from = (OmegaConf.to_container(cfg.tokenizer, resolve=True), tokenizer_hash(tokenizer))
    corpus = prepare_corpus(
        documents,
        cleaning=list(cfg.data.cleaning),
        val_fraction=cfg.data.val_fraction,
        train_tokenizer=train_tokenizer,
        tokenizer_config=tokenizer_config,
        cache_dir=cfg.paths.cache_dir,
        trained_from=trained_from,
    )
    for split in ("train", "val"):
        check_split_length(split, corpus.meta["tokens"][split], cfg.data.block_size)
    return corpus


def open_prepared(cfg: DictConfig, tokenizer: Tokenizer | None = None) -> PreparedCorpus | PreparedMixture:
    """The prepared dataset ``data.path`` names, or the datasets of ``data.mixture``, their
    splits checked against ``block_size``.

    Raises:
        ConfigError: both or neither of ``data.path`` and ``data.mixture``.
        CheckpointMismatchError: ``tokenizer`` (a finished run's) is not the dataset's.
    """
    mixture = cfg.data.get("mixture")
    if (cfg.data.path is None) == (mixture is None):
        raise ConfigError(
            "data=prepared needs one of data.path=<dataset> and data.mixture=[{path: <dataset>, weight: <w>}, ...]; "
            f"got {'both' if mixture is not None else 'neither'}."
        )
    if mixture is not None:
        corpus = PreparedMixture(OmegaConf.to_container(mixture, resolve=True))
    else:
        corpus = PreparedCorpus(cfg.data.path)
    if tokenizer is not None and tokenizer_hash(tokenizer) != corpus.meta["tokenizer_sha256"]:
        raise CheckpointMismatchError(
            f"data.path={cfg.data.path} was tokenized with another tokenizer than the one this run must use (a finished "
            "run's, or model.init_from's); use a dataset prepared with that tokenizer (prepare tokenizer.path=<run>/tokenizer.json)."
        )
    if mixture is None:
        for split in ("train", "val"):
            check_split_length(split, corpus.meta["tokens"][split], cfg.data.block_size)
    return corpus


def language_model_arguments(cfg: DictConfig, tokenizer_vocab_size: int) -> dict[str, int]:
    """The model arguments the data decides: ``vocab_size`` (``model.vocab_size: null`` takes
    the tokenizer's size).

    Raises:
        ConfigError: ``model.vocab_size`` smaller than the tokenizer's vocabulary.
    """
    vocab_size = cfg.model.vocab_size or tokenizer_vocab_size
    if vocab_size < tokenizer_vocab_size:
        raise ConfigError(
            f"model.vocab_size={vocab_size} is smaller than the tokenizer's vocabulary of "
            f"{tokenizer_vocab_size} ids; set model.vocab_size=null or at least {tokenizer_vocab_size}."
        )
    return {"vocab_size": vocab_size}


# Keys of ``cfg.model`` for the training code, not for the model's constructor: ``compile``
# (the task compiles, see build_task) and ``init_from`` (framework.transfer loads the weights).
TRAINING_MODEL_KEYS = ("compile", "init_from")


def model_constructor_config(cfg: DictConfig) -> dict:
    """``cfg.model`` resolved, without :data:`TRAINING_MODEL_KEYS`."""
    return {key: value for key, value in OmegaConf.to_container(cfg.model, resolve=True).items() if key not in TRAINING_MODEL_KEYS}


def compiles(cfg: DictConfig) -> bool:
    """Whether training compiles the model (``model.compile``; absent in older runs' configs)."""
    return bool(cfg.model.get("compile", False))


def instantiate_model(cfg: DictConfig, **arguments) -> nn.Module:
    """Instantiate :func:`model_constructor_config` with ``arguments`` added."""
    return hydra.utils.instantiate(model_constructor_config(cfg), **arguments)


def build_model(cfg: DictConfig, tokenizer_vocab_size: int) -> nn.Module:
    """Instantiate ``cfg.model`` with :func:`language_model_arguments`."""
    return instantiate_model(cfg, **language_model_arguments(cfg, tokenizer_vocab_size))


def build_datamodule(cfg: DictConfig, corpus, world_size: int = 1) -> LanguageModelingDataModule | MixtureDataModule:
    """Windows over the cached or prepared splits (a mixture's by weight); enough training
    samples for exactly ``max_steps`` steps on ``world_size`` processes (each takes every
    ``world_size``-th sample)."""
    if isinstance(corpus, PreparedMixture):
        return MixtureDataModule(
            corpus,
            block_size=cfg.data.block_size,
            batch_size=cfg.data.batch_size,
            num_train_samples=training_samples(cfg, world_size),
            seed=cfg.seed,
            num_workers=cfg.data.num_workers,
        )
    return LanguageModelingDataModule(
        train_tokens=corpus.tokens("train"),
        val_tokens=corpus.tokens("val"),
        block_size=cfg.data.block_size,
        batch_size=cfg.data.batch_size,
        num_train_samples=training_samples(cfg, world_size),
        seed=cfg.seed,
        num_workers=cfg.data.num_workers,
    )


def instantiate_task(cfg: DictConfig, model: nn.Module, **arguments) -> pl.LightningModule:
    """Instantiate ``cfg.task`` around ``model`` with the run's optimizer, scheduler (configs
    until fit), compilation and fine-tuning settings, and the task's own ``arguments``."""
    return hydra.utils.instantiate(
        cfg.task,
        model=model,
        optimizer=cfg.optimizer,
        scheduler=cfg.scheduler,
        compile_model=compiles(cfg),
        finetune=cfg.get("finetune"),
        **arguments,
        _recursive_=False,
    )


def build_task(cfg: DictConfig, model: nn.Module, tokenizer: Tokenizer, val_sources: list[str] | None = None) -> pl.LightningModule:
    """The language-modelling task: ``tokenizer`` gives the characters and bytes per token for
    ``val/bpc`` and ``val/bpb``; ``val_sources`` names a mixture's validation loaders."""
    return instantiate_task(
        cfg,
        model,
        characters_per_token=torch.from_numpy(characters_per_token(tokenizer)),
        bytes_per_token=torch.from_numpy(bytes_per_token(tokenizer)),
        val_sources=val_sources,
    )


def build_classification_task(cfg: DictConfig, model: nn.Module, num_classes: int) -> pl.LightningModule:
    """The classification task for ``num_classes`` classes."""
    return instantiate_task(cfg, model, num_classes=num_classes)


class LanguageModelingRecipe:
    """Language modelling: the token cache of ``cfg.data`` and windows of ``block_size`` tokens."""

    def __init__(self, cfg: DictConfig, tokenizer: Tokenizer | None = None) -> None:
        self.cfg = cfg
        self.corpus = build_corpus(cfg, tokenizer)
        self.tokenizer = self.corpus.tokenizer
        self.tokenizer_sha256 = self.corpus.meta["tokenizer_sha256"]

    @classmethod
    def for_config(cls, cfg: DictConfig, trained: dict) -> LanguageModelingRecipe:
        return cls(cfg, Tokenizer.from_str(trained["tokenizer_json"]))

    @staticmethod
    def task_for(cfg: DictConfig, model: nn.Module, tokenizer: Tokenizer, metadata: dict) -> pl.LightningModule:
        return build_task(cfg, model, tokenizer)

    def samples_per_epoch(self) -> int:
        """One epoch is as many windows as the training split has ``block_size`` tokens."""
        return self.corpus.meta["tokens"]["train"] // self.cfg.data.block_size

    def model(self) -> nn.Module:
        return build_model(self.cfg, self.corpus.vocab_size)

    def model_arguments(self) -> dict[str, int]:
        return language_model_arguments(self.cfg, self.corpus.vocab_size)

    def checkpoint_metadata(self) -> dict:
        return {"model_arguments": self.model_arguments()}

    def task(self, model: nn.Module) -> pl.LightningModule:
        return build_task(self.cfg, model, self.tokenizer, self.corpus.names if isinstance(self.corpus, PreparedMixture) else None)

    def datamodule(self, world_size: int) -> pl.LightningDataModule:
        return build_datamodule(self.cfg, self.corpus, world_size)

    def sample(self, model: nn.Module) -> str:
        return sample_texts(model, self.tokenizer, **self.cfg.sample, seed=self.cfg.seed)[0]


class ClassificationRecipe:
    """Classification: labelled files (``cfg.data``, a :class:`LabelledTextFiles`), a tokenizer
    trained on the training texts, examples padded/truncated to ``data.max_length``.

    Raises:
        DataError: fewer than two classes in the training split, or a validation label the
            training split lacks.
    """

    def __init__(self, cfg: DictConfig, tokenizer: Tokenizer | None = None, classes: list[str] | None = None) -> None:
        self.cfg = cfg
        files: LabelledTextFiles = hydra.utils.instantiate(cfg.data)
        self.splits: dict[str, EncodedSplit] = {}
        training = classes is None
        if training:  # the classes come from the training split, and the tokenizer unless given (model.init_from)
            texts, labels = files.read("train")
            self.label_names = label_names(labels)
            self.tokenizer = tokenizer or hydra.utils.instantiate(cfg.tokenizer)("\n".join(texts))
        else:  # evaluating a finished run: its tokenizer and classes; the training file is not read
            self.label_names, self.tokenizer = classes, tokenizer
        if len(self.label_names) < 2:
            raise DataError(f"{files.file('train')} has only the label(s) {self.label_names}; a classifier needs at least two classes.")
        if cfg.optimized_metric == "val/auroc" and len(self.label_names) > 2:
            raise ConfigError(
                f"optimized_metric=val/auroc is logged for two classes only; this data has {len(self.label_names)}. Use val/acc or val/f1."
            )
        self.tokenizer_sha256 = tokenizer_hash(self.tokenizer)
        self.pad_id = pad_id(self.tokenizer, pretrained=bool(cfg.model.get("init_from")))
        if training:
            self.splits["train"] = self._encode(files, "train", texts, labels)
        self.splits["val"] = self._encode(files, "val", *files.read("val"))
        if files.test_file is not None:
            self.splits["test"] = self._encode(files, "test", *files.read("test"))

    @classmethod
    def for_config(cls, cfg: DictConfig, trained: dict) -> ClassificationRecipe:
        return cls(cfg, Tokenizer.from_str(trained["tokenizer_json"]), trained["label_names"])

    @staticmethod
    def task_for(cfg: DictConfig, model: nn.Module, tokenizer: Tokenizer, metadata: dict) -> pl.LightningModule:
        return build_classification_task(cfg, model, len(metadata["label_names"]))

    def samples_per_epoch(self) -> int:
        """One epoch is every training example once."""
        return len(self.splits["train"])

    def _encode(self, files: LabelledTextFiles, split: str, texts: list[str], labels: list[str]) -> EncodedSplit:
        """Raises DataError for a split without examples."""
        if not texts:
            raise DataError(f"{files.file(split)} has no examples; the {split} split needs at least one.")
        data = self.cfg.data
        ids, mask = encode_padded(self.tokenizer, texts, data.max_length, data.padding, data.truncation, self.pad_id)
        return EncodedSplit(ids, mask, label_ids(labels, self.label_names, files.file(split)))

    @property
    def num_outputs(self) -> int:
        """One logit for two classes (sigmoid), else one per class (softmax)."""
        return 1 if len(self.label_names) == 2 else len(self.label_names)

    def model_arguments(self) -> dict[str, int]:
        """The model arguments the config leaves to the data: ``vocab_size`` and ``num_outputs``.

        Raises:
            ConfigError: a configured ``model.vocab_size`` too small for the tokenizer and pad id.
        """
        vocab_size = max(self.tokenizer.get_vocab_size(), self.pad_id + 1)
        configured = self.cfg.model.get("vocab_size")
        if configured is not None and configured < vocab_size:
            raise ConfigError(
                f"model.vocab_size={configured} is smaller than the {vocab_size} ids the tokenizer and padding need; set it to null."
            )
        outputs = self.cfg.model.get("num_outputs")
        if outputs is not None and outputs != self.num_outputs:
            raise ConfigError(
                f"model.num_outputs={outputs} does not fit {len(self.label_names)} classes, which need {self.num_outputs} "
                "(1 logit for two classes, else one per class); set it to null."
            )
        return {"vocab_size": configured or vocab_size, "num_outputs": self.num_outputs}

    def checkpoint_metadata(self) -> dict:
        return {"model_arguments": self.model_arguments(), "label_names": self.label_names}

    def model(self) -> nn.Module:
        return instantiate_model(self.cfg, **self.model_arguments())

    def task(self, model: nn.Module) -> pl.LightningModule:
        return build_classification_task(self.cfg, model, len(self.label_names))

    def datamodule(self, world_size: int) -> pl.LightningDataModule:
        return ClassificationDataModule(
            self.splits.get("train"),
            self.splits["val"],
            batch_size=self.cfg.data.batch_size,
            num_train_samples=training_samples(self.cfg, world_size),
            seed=self.cfg.seed,
            num_workers=self.cfg.data.num_workers,
            test=self.splits.get("test"),
        )

    def sample(self, model: nn.Module) -> None:
        return None


class MaskedLanguageModelingRecipe:
    """Masked language modelling: one example per line of labelled files (``cfg.data``, the
    labels unused) as ``[CLS] ... [SEP]``, cut and padded to ``data.max_length``, masked by
    :func:`masking_scheme`.

    Raises:
        ConfigError: a tokenizer without ``[MASK]``, ``[CLS]``, ``[SEP]`` or ``[PAD]``.
    """

    def __init__(self, cfg: DictConfig, tokenizer: Tokenizer | None = None, training: bool = True) -> None:
        self.cfg = cfg
        files: LabelledTextFiles = hydra.utils.instantiate(cfg.data)
        self.splits: dict[str, EncodedSplit] = {}
        if training:
            texts = files.read("train")[0]
            self.tokenizer = tokenizer or hydra.utils.instantiate(cfg.tokenizer)("\n".join(texts))
        else:
            self.tokenizer = tokenizer
        self.tokenizer_sha256 = tokenizer_hash(self.tokenizer)
        self.scheme = masking_scheme(self.tokenizer, cfg.task.mask_probability)
        self.pad_id = self.tokenizer.token_to_id("[PAD]")
        if training:
            self.splits["train"] = self._encode(files, "train", texts)
        self.splits["val"] = self._encode(files, "val", files.read("val")[0])

    @classmethod
    def for_config(cls, cfg: DictConfig, trained: dict) -> MaskedLanguageModelingRecipe:
        return cls(cfg, Tokenizer.from_str(trained["tokenizer_json"]), training=False)

    @staticmethod
    def task_for(cfg: DictConfig, model: nn.Module, tokenizer: Tokenizer, metadata: dict) -> pl.LightningModule:
        return build_masked_task(cfg, model, metadata["model_arguments"]["vocab_size"])

    def _encode(self, files: LabelledTextFiles, split: str, texts: list[str]) -> EncodedSplit:
        """Raises DataError for a split without examples."""
        if not texts:
            raise DataError(f"{files.file(split)} has no examples; the {split} split needs at least one.")
        data = self.cfg.data
        return EncodedSplit(*encode_padded(self.tokenizer, texts, data.max_length, data.padding, data.truncation, self.pad_id))

    def samples_per_epoch(self) -> int:
        """One epoch is every training text once."""
        return len(self.splits["train"])

    def model_arguments(self) -> dict[str, int]:
        return language_model_arguments(self.cfg, self.tokenizer.get_vocab_size())

    def checkpoint_metadata(self) -> dict:
        return {"model_arguments": self.model_arguments()}

    def model(self) -> nn.Module:
        return instantiate_model(self.cfg, **self.model_arguments())

    def task(self, model: nn.Module) -> pl.LightningModule:
        return build_masked_task(self.cfg, model, self.model_arguments()["vocab_size"])

    def datamodule(self, world_size: int) -> pl.LightningDataModule:
        return MaskedLanguageDataModule(
            self.splits.get("train"),
            self.splits["val"],
            self.scheme,
            batch_size=self.cfg.data.batch_size,
            num_train_samples=training_samples(self.cfg, world_size),
            seed=self.cfg.seed,
            num_workers=self.cfg.data.num_workers,
        )

    def sample(self, model: nn.Module) -> None:
        return None


def build_masked_task(cfg: DictConfig, model: nn.Module, vocab_size: int) -> pl.LightningModule:
    """The masked-LM task, ``vocab_size`` the classes of ``val/mlm_acc``."""
    return instantiate_task(cfg, model, vocab_size=vocab_size)


RECIPES: dict[str, type] = {
    "language_modeling": LanguageModelingRecipe,
    "classification": ClassificationRecipe,
    "masked_language_modeling": MaskedLanguageModelingRecipe,
}
