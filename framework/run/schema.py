"""Typed checks of a composed config, run once per run before any data is read or any model
is built.

Instantiable nodes (those with ``_target_``) are checked against the target's own signature
and type hints, so a new model, optimizer or Trainer argument needs no schema of its own.
The other nodes have dataclass schemas below. Cross-field rules come last. Every failure is
a :class:`~framework.errors.ConfigError` that names the key the user typed (a value that
follows another key through ``${...}`` is reported under that key), the value and what is
valid. Rules that one constructor can check on its own arguments live in that constructor.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import shutil
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from framework.data.cleaning import validate_cleaning
from framework.data.token_cache import check_val_fraction
from framework.errors import ConfigError
from framework.run.kinds import labelled_data, model_kind, prepared_data, task_kind
from framework.strategy.launch import requested_processes

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
# Arguments the training code fills in when the config leaves them null.
RUNTIME_ARGUMENTS = {"model": {"vocab_size", "num_outputs"}, "callbacks.model_checkpoint": {"mode"}}
# Keys a node holds for the training code rather than for its _target_, with their types.
TRAINING_KEYS = {"model": {"compile": bool, "init_from": str | None}}


@dataclass
class DataSchema:
    source: dict
    cleaning: list
    val_fraction: float
    block_size: int
    batch_size: int
    num_workers: int
    path: str | None = None


@dataclass
class PreparedDataSchema:
    path: str | None
    block_size: int
    batch_size: int
    num_workers: int
    mixture: list | None = None


@dataclass
class FinetuneSchema:
    head_lr: float | None
    layer_decay: float
    freeze_steps: int


@dataclass
class SampleSchema:
    prompt: str
    max_new_tokens: int
    temperature: float
    top_k: int | None


@dataclass
class PathsSchema:
    root_dir: str
    log_dir: str
    run_dir: str
    cache_dir: str


class _Instantiable:
    """Marker: a node with ``_target_``, checked against the target's signature."""


class _InstantiableMap:
    """Marker: a mapping of names to instantiable nodes (or null), e.g. ``logger``, ``callbacks``."""


TOP_LEVEL: dict[str, Any] = {
    "data": DataSchema,
    "tokenizer": _Instantiable,
    "model": _Instantiable,
    "task": _Instantiable,
    "optimizer": _Instantiable,
    "scheduler": _Instantiable,
    "trainer": _Instantiable,
    "logger": _InstantiableMap,
    "callbacks": _InstantiableMap,
    "paths": PathsSchema,
    "finetune": FinetuneSchema,
    "sample": SampleSchema,
    "seed": int,
    "threads": int | None,
    "resume": str,
    "optimized_metric": str,
}


def unknown_key_error(key: str, valid: Sequence[str], nested: Sequence[str] = ()) -> ConfigError:
    """The error for an unknown ``key`` (dotted path): the nearest valid names; else the
    ``nested`` dotted keys that end in the same name (``trainer.max_steps`` for ``max_steps``);
    else all valid names."""
    parent, _, name = key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
    best = difflib.SequenceMatcher(None, name, close[0]).ratio() if close else 0.0
    close = [candidate for candidate in close if difflib.SequenceMatcher(None, name, candidate).ratio() >= best - 0.05]
    deeper = [candidate for candidate in nested if candidate.endswith(f".{name}")]
    if close:
        hint = "Did you mean " + " or ".join(f"'{prefix}{candidate}'" for candidate in close) + "?"
    elif deeper:
        hint = "Did you mean " + " or ".join(f"'{candidate}'" for candidate in deeper[:3]) + "?"
    else:
        hint = f"Valid keys under {parent or 'the top level'}: {', '.join(sorted(valid))}."
    return ConfigError(f"Unknown config key '{key}'. {hint}")


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if annotation is type(None):
        return "null"
    container = origin or annotation
    if container in (list, tuple, Sequence, typing.Sequence):
        return "a list"
    if container in (dict, Mapping, typing.Mapping):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def matches_type(value: Any, annotation: Any) -> bool:
    """Whether a config ``value`` fits ``annotation``; types we cannot check are accepted."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arm) for arm in args)
    if origin is Literal:
        return value in args
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in (list, tuple, Sequence, typing.Sequence):
        return isinstance(value, (ListConfig, list, tuple))
    if container in (dict, Mapping, typing.Mapping):
        return isinstance(value, (DictConfig, dict))
    return True


_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")


def config_error(error: OmegaConfBaseException) -> ConfigError:
    """One paragraph for a value OmegaConf cannot resolve (a bad ``${...}`` interpolation)."""
    message = str(error).splitlines()[0]
    key = getattr(error, "full_key", None)
    return ConfigError(f"{key}: {message}" if key else message)


def typed_key(node: DictConfig, key: str, path: str) -> str:
    """The key a user sets to change ``node[key]`` (at ``path``): the referenced key for a value
    that is only ``${other.key}``, else ``path`` itself."""
    reference = _REFERENCE.match(str(node._get_node(key)._value()))
    return reference.group(1) if reference else path


def value_of(node: DictConfig, key: str, path: str) -> Any:
    """``node[key]`` resolved.

    Raises:
        ConfigError: the value is ``???`` or its interpolation does not resolve.
    """
    if OmegaConf.is_missing(node, key):
        raise ConfigError(f"{path} has no value (???); set it on the command line, e.g. {path}=...")
    try:
        return node[key]
    except OmegaConfBaseException as error:
        raise config_error(error) from None


def _check_value(node: DictConfig, key: str, path: str, annotation: Any) -> None:
    value = value_of(node, key, path)
    if not matches_type(value, annotation):
        shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        raise ConfigError(f"{typed_key(node, key, path)}={shown!r} has the wrong type: expected {_describe(annotation)}.")


def _target_callable(target_path: str) -> Callable:
    """The function a ``_target_`` calls: the class's ``__init__``, or the function itself."""
    target = hydra.utils.get_object(target_path)
    return target.__init__ if isinstance(target, type) else target


def target_arguments(target_path: str) -> list[str]:
    """Keyword arguments accepted by the class or function at ``target_path``."""
    return [
        name
        for name, parameter in inspect.signature(_target_callable(target_path)).parameters.items()
        if name != "self" and parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]


def check_instantiable(node: DictConfig, path: str) -> None:
    """Check ``node``'s keys and value types against the signature of its ``_target_``."""
    if "_target_" not in node:
        raise ConfigError(f"{path} has no _target_: it must name the class or function to build.")
    try:
        function = _target_callable(node._target_)
    except Exception:
        raise ConfigError(f"{path}._target_={node._target_!r} cannot be imported; check the dotted path.") from None
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations that do not resolve: check names only
        hints = {}
    parameters = inspect.signature(function).parameters.values()
    takes_any_keyword = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)
    training_keys = TRAINING_KEYS.get(path, {})
    valid = target_arguments(node._target_) + list(training_keys)
    for key in node:
        if key in HYDRA_KEYS:
            continue
        if key in training_keys:
            _check_value(node, key, f"{path}.{key}", training_keys[key])
            continue
        if key not in valid and not takes_any_keyword:
            raise unknown_key_error(f"{path}.{key}", valid)
        if value_of(node, key, f"{path}.{key}") is None and key in RUNTIME_ARGUMENTS.get(path, ()):
            continue
        _check_value(node, key, f"{path}.{key}", hints.get(key, Any))


def check_dataclass_node(node: DictConfig, schema: type, path: str) -> None:
    """Check ``node`` has exactly the fields of ``schema`` (a dataclass), with their types."""
    fields = {field.name: field for field in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in node:
        if key not in fields:
            raise unknown_key_error(f"{path}.{key}", list(fields))
        _check_value(node, key, f"{path}.{key}", hints[key])
    absent = [name for name, field in fields.items() if name not in node and field.default is dataclasses.MISSING]
    if absent:
        raise ConfigError(f"{path} lacks the key(s) {', '.join(absent)}.")


def check_structure(cfg: DictConfig) -> None:
    """Unknown keys and wrong types anywhere in ``cfg``."""
    for key in cfg:
        if key not in TOP_LEVEL:
            raise unknown_key_error(key, list(TOP_LEVEL))
        schema, value = TOP_LEVEL[key], value_of(cfg, key, key)
        if key == "data" and labelled_data(value):
            schema = _Instantiable  # labelled files for classification (framework.data.LabelledTextFiles)
        elif key == "data" and prepared_data(value):
            schema = PreparedDataSchema
        if schema is _Instantiable:
            check_instantiable(value, key)
        elif schema is _InstantiableMap:
            for name in value:
                if value[name] is not None:
                    check_instantiable(value[name], f"{key}.{name}")
        elif dataclasses.is_dataclass(schema):
            _check_value(cfg, key, key, dict)
            check_dataclass_node(value, schema, key)
        else:
            _check_value(cfg, key, key, schema)
    if "source" in cfg.data:
        check_instantiable(cfg.data.source, "data.source")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_language_modeling_data(data: DictConfig, model: DictConfig) -> None:
    for key in ("block_size", "batch_size"):
        _require(data[key] >= 1, f"data.{key}={data[key]} must be at least 1.")
    if not prepared_data(data):
        check_val_fraction(data.val_fraction)
        validate_cleaning(data.cleaning)
    if "block_size" in model and typed_key(model, "block_size", "model.block_size") == "model.block_size":
        _require(
            data.block_size <= model.block_size,
            f"data.block_size={data.block_size} is larger than the model's context model.block_size="
            f"{model.block_size}; lower data.block_size or raise model.block_size.",
        )


# What each task kind trains on, and the model options that fit it.
KIND_DATA = {
    "language_modeling": ({"a text corpus"}, "data=stdlib, text_files, tinyshakespeare or prepared"),
    "classification": ({"labelled files"}, "data=sst2 or data=labelled_files"),
    "masked_language_modeling": ({"labelled files", "text lines"}, "data=text_lines, or data=sst2 / labelled_files (labels unused)"),
}
KIND_MODELS = {
    "language_modeling": "model=gpt or model=lstm",
    "classification": "model=lstm_classifier, transformer_classifier, bert_classifier or gpt_classifier",
    "masked_language_modeling": "model=bert",
}
TEXT_LINES = "framework.data.TextLines"


def data_kind(data: DictConfig) -> str:
    """``text lines`` (``data=text_lines``), ``labelled files`` or ``a text corpus``."""
    if labelled_data(data):
        return "text lines" if data._target_ == TEXT_LINES else "labelled files"
    return "a text corpus"


def _check_task_fits(cfg: DictConfig) -> None:
    """The task, the data and the model must be of one kind (``TrainingTask.KIND``)."""
    try:
        kind, models_kind = task_kind(cfg), model_kind(cfg)
    except Exception:  # not importable: check_structure names the key
        return
    wanted, options = KIND_DATA[kind]
    given = data_kind(cfg.data)
    _require(
        given in wanted, f"task={kind} needs {' or '.join(sorted(wanted))} ({options}), but data is {given}; choose a matching data option."
    )
    _require(models_kind == kind, f"model {cfg.model._target_} does not fit task={kind}; use {KIND_MODELS[kind]}.")


def _build_cheap_parts(cfg: DictConfig) -> None:
    """Build what checks its own arguments and costs nothing to build: the model on the meta
    device (no memory; the sizes the data decides stand in as 1), the fine-tuning options
    against it, and the labelled data description, so their constructors' rules are met before
    any data is read."""
    placeholders = {key: 1 for key in RUNTIME_ARGUMENTS["model"] if key in cfg.model and cfg.model[key] is None}
    constructor = {key: value for key, value in cfg.model.items() if key not in TRAINING_KEYS["model"]}
    import torch

    from framework.optim import FineTuning

    try:
        with torch.device("meta"):
            model = hydra.utils.instantiate(constructor, **placeholders)
        FineTuning(**(cfg.get("finetune") or {})).check_model(model)  # a run stored before finetune existed has none
        if labelled_data(cfg.data):
            hydra.utils.instantiate(cfg.data)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise


def check_rules(cfg: DictConfig) -> None:
    """Cross-field and range rules that types alone cannot express."""
    data, model, trainer = cfg.data, cfg.model, cfg.trainer
    if not labelled_data(data):
        _check_language_modeling_data(data, model)
    elif "block_size" in model and typed_key(model, "block_size", "model.block_size") == "model.block_size":
        _require(
            data.max_length <= model.block_size,
            f"data.max_length={data.max_length} is longer than model.block_size={model.block_size}; raise model.block_size.",
        )
    _require(data.num_workers >= 0, f"data.num_workers={data.num_workers} must be 0 or more.")
    threads = cfg.get("threads")
    _require(threads is None or threads >= 1, f"threads={threads} must be null (all usable cores) or at least 1.")
    _require(
        trainer.max_steps >= 1 or trainer.get("max_epochs") is not None,
        f"trainer.max_steps={trainer.max_steps} must be a positive number of optimizer steps (or set trainer.max_epochs).",
    )
    epochs = trainer.get("max_epochs")
    _require(epochs is None or epochs >= 1, f"trainer.max_epochs={epochs} must be null or at least 1.")
    _require(
        trainer.accumulate_grad_batches >= 1,
        f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} must be at least 1.",
    )
    if model.get("vocab_size") is not None and cfg.tokenizer.get("vocab_size") is not None and not prepared_data(data):
        _require(
            cfg.tokenizer.vocab_size <= model.vocab_size,
            f"tokenizer.vocab_size={cfg.tokenizer.vocab_size} is larger than the model's embedding table "
            f"model.vocab_size={model.vocab_size}; set model.vocab_size=null to follow the tokenizer.",
        )
    warmup = cfg.scheduler.get("warmup_steps")
    _require(warmup is None or warmup >= 0, f"scheduler.warmup_steps={warmup} must be 0 or more.")
    for key in ("lr", "weight_decay", "muon.lr", "muon.weight_decay"):
        value = OmegaConf.select(cfg.optimizer, key)
        if value is not None:
            _require(
                isinstance(value, (int, float)) and not isinstance(value, bool),
                f"optimizer.{key}={value!r} has the wrong type: expected a number.",
            )
            _require(value >= 0, f"optimizer.{key}={value} must be >= 0.")
    min_lr, lr = cfg.scheduler.get("min_lr"), cfg.optimizer.get("lr")
    if min_lr is not None and lr is not None:
        _require(0 <= min_lr <= lr, f"scheduler.min_lr={min_lr} must be between 0 and optimizer.lr={lr}.")
    logged = getattr(hydra.utils.get_object(cfg.task._target_), "METRICS", {})
    _require(
        cfg.optimized_metric in logged,
        f"optimized_metric={cfg.optimized_metric} is never logged by {cfg.task._target_}; it logs {', '.join(logged)}.",
    )
    if task_kind(cfg) == "masked_language_modeling":
        _check_masked_language_modeling(cfg)
    _check_strategy_device(trainer)
    _check_skip_on_one_process(cfg)
    _check_fused_clipping(cfg.optimizer, trainer)
    _check_muon(cfg)
    _check_downstream(cfg)
    _check_compiler(model, trainer)
    _require("compile_model" not in cfg.task, "task.compile_model is set from model.compile; use model.compile=true instead.")
    sample = cfg.sample
    _require(sample.prompt != "", "sample.prompt is empty; give at least one character to start the sample from.")
    _require(sample.max_new_tokens >= 0, f"sample.max_new_tokens={sample.max_new_tokens} must be 0 or more.")
    _require(sample.temperature > 0, f"sample.temperature={sample.temperature} must be > 0.")
    _require(sample.top_k is None or sample.top_k >= 1, f"sample.top_k={sample.top_k} must be null or at least 1.")
    _build_cheap_parts(cfg)


# The tokenizer options that give BERT's special tokens.
MLM_TOKENIZERS = ("framework.tokenizer.train_wordpiece_tokenizer", "framework.tokenizer.tokenizer_from_file")


def _check_masked_language_modeling(cfg: DictConfig) -> None:
    """The masking probability, and a tokenizer that can have ``[MASK]`` (a file's or a
    pretrained model's tokens are checked once it is read)."""
    from framework.data.masking import check_mask_probability

    check_mask_probability(cfg.task.mask_probability)
    _require(
        bool(cfg.model.get("init_from")) or cfg.tokenizer.get("_target_") in MLM_TOKENIZERS,
        f"task=masked_language_modeling needs BERT's special tokens [PAD] [CLS] [SEP] [MASK], which {cfg.tokenizer.get('_target_')} "
        "does not make; use tokenizer=wordpiece, tokenizer=file with a BERT tokenizer.json, or model.init_from=<BERT run or hf:dir>.",
    )


def _on_cpu(trainer: DictConfig) -> bool:
    import torch

    return trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not torch.cuda.is_available())


def _check_strategy_device(trainer: DictConfig) -> None:
    """Lightning's FSDP1 ``FSDPStrategy`` needs CUDA; say so before any data is prepared."""
    strategy = trainer.get("strategy")
    if not (isinstance(strategy, DictConfig) and str(strategy.get("_target_", "")).endswith(".FSDPStrategy")):
        return
    _require(
        not _on_cpu(trainer),
        f"strategy=fsdp1 (Lightning's FSDPStrategy) runs on CUDA GPUs only, but trainer.accelerator="
        f"{trainer.accelerator} runs on CPU here. Use strategy=fsdp (FSDP2 through ModelParallelStrategy), "
        "which shards the same way on CPU with gloo and on GPUs with nccl.",
    )


def _check_skip_on_one_process(cfg: DictConfig) -> None:
    """Skipping a step on one process would still all-reduce its NaN gradients into the others'."""
    guard = cfg.callbacks.get("nonfinite_loss")
    processes = requested_processes(cfg.trainer)
    _require(
        guard is None or guard.get("policy") != "skip" or processes == 1,
        f"callbacks.nonfinite_loss.policy=skip needs one process, but the trainer settings ask for {processes}: a skipped "
        "step's non-finite gradients would still reach the other processes through the all-reduce. Use policy=stop.",
    )


def _sharded(trainer: DictConfig) -> bool:
    """Whether the strategy shards parameters across processes (FSDP2 or Lightning's FSDP1)."""
    strategy = trainer.get("strategy")
    return isinstance(strategy, DictConfig) and str(strategy.get("_target_", "")).endswith(("FSDP2Strategy", ".FSDPStrategy"))


def _check_muon(cfg: DictConfig) -> None:
    """Muon orthogonalises each whole matrix, which FSDP holds a shard of per process; its rate
    decays to ``scheduler.min_lr`` like AdamW's."""
    from framework.optim.muon import uses_muon  # imports torch, which the checks before it do not need

    if not uses_muon(cfg.optimizer):
        return
    _require(
        not _sharded(cfg.trainer),
        "optimizer=muon cannot run under strategy=fsdp: Muon orthogonalises each whole weight matrix, and FSDP keeps "
        "only a shard of each on every process. Use strategy=ddp with optimizer=muon, or another optimizer (adamw) with FSDP.",
    )
    min_lr, muon_lr = cfg.scheduler.get("min_lr"), cfg.optimizer.muon.lr
    _require(
        min_lr is None or min_lr <= muon_lr,
        f"scheduler.min_lr={min_lr} is above optimizer.muon.lr={muon_lr}: the schedule would raise Muon's rate as it decays.",
    )


def _check_downstream(cfg: DictConfig) -> None:
    """``callbacks.downstream`` scores a causal language model held whole by the first process."""
    node = cfg.callbacks.get("downstream")
    if not node or not node.get("tasks"):
        return
    from framework.harness.evaluation import HarnessSettings

    _require(
        task_kind(cfg) == "language_modeling",
        f"callbacks.downstream.tasks={list(node.tasks)}: lm-evaluation-harness scores causal language models "
        f"(task=language_modeling), not task={task_kind(cfg)}. Set callbacks.downstream.tasks=[].",
    )
    every = node.get("every_n_steps")
    _require(
        every is None or every >= 1,
        f"callbacks.downstream.every_n_steps={every} must be null (with each validation) or at least 1 optimizer step.",
    )
    _require(
        not _sharded(cfg.trainer),
        "callbacks.downstream runs the whole model on the first process, which FSDP shards across all of them. Use "
        "strategy=ddp, or evaluate the finished run: python -m framework.evaluate run_dir=<run> harness.tasks=[...].",
    )
    settings = {field.name: node.get(field.name) for field in dataclasses.fields(HarnessSettings)}
    HarnessSettings(**settings).check("callbacks.downstream")


def _check_fused_clipping(optimizer: DictConfig, trainer: DictConfig) -> None:
    """fp16's GradScaler unscales gradients inside a fused optimizer's step, so they cannot be
    clipped before it (Lightning would fail at the first step)."""
    scaled = str(trainer.precision) in ("16", "16-mixed")
    _require(
        not (scaled and optimizer.get("fused") and trainer.gradient_clip_val),
        f"trainer.precision={trainer.precision} with trainer.gradient_clip_val={trainer.gradient_clip_val} cannot use "
        "optimizer.fused=true: fp16's gradient scaler unscales the gradients inside a fused optimizer's step, after "
        "clipping would have to happen. Set optimizer.fused=false, use trainer.precision=bf16-mixed (no scaler), "
        "or set trainer.gradient_clip_val=null.",
    )


def _check_compiler(model: DictConfig, trainer: DictConfig) -> None:
    """torch.compile's CPU code generation (Inductor) builds C++: say so before any data is read."""
    if not model.get("compile") or not _on_cpu(trainer):
        return
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")  # what Inductor runs
    _require(
        shutil.which(compiler) is not None,
        f"model.compile=true on CPU needs a C++ compiler for torch.compile's generated code, and {compiler} "
        "(the CXX environment variable, else Inductor's default) is not on PATH. Install it (e.g. apt install g++), "
        "point CXX at one, or set model.compile=false.",
    )


def validate_config(cfg: DictConfig) -> None:
    """Check ``cfg`` completely: keys, types, then cross-field rules (once per run).

    Raises:
        ConfigError: the first problem found, in one paragraph naming the key and value.
    """
    try:
        _check_task_fits(cfg)  # first: a mismatched model's interpolations may not resolve
        check_structure(cfg)
        check_rules(cfg)
    except OmegaConfBaseException as error:
        raise config_error(error) from None
