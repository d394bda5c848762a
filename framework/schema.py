"""Typed checks of a composed config, run before any data is read or any model is built.

Instantiable nodes (those with ``_target_``) are checked against the target's own signature
and type hints, so a new model, optimizer or Trainer argument needs no schema of its own.
The other nodes have dataclass schemas below. Cross-field rules come last. Every failure is
a :class:`~framework.errors.ConfigError` that names the key, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import shutil
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import hydra.utils
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from framework.data.cleaning import CLEANING_STEPS
from framework.errors import ConfigError

MODEL_SIZES = ("vocab_size", "num_outputs", "block_size", "n_layer", "n_head", "n_embd", "hidden_size")
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
# Arguments the training code fills in when the config leaves them null.
RUNTIME_ARGUMENTS = {"model": {"vocab_size", "num_outputs"}, "callbacks.model_checkpoint": {"mode"}}
# Keys a node holds for the training code rather than for its _target_, with their types.
TRAINING_KEYS = {"model": {"compile": bool}}


@dataclass
class DataSchema:
    source: dict
    cleaning: list
    val_fraction: float
    block_size: int
    batch_size: int
    num_workers: int
    path: Optional[str] = None


@dataclass
class SampleSchema:
    prompt: str
    max_new_tokens: int
    temperature: float
    top_k: Optional[int]


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
    "sample": SampleSchema,
    "seed": int,
    "resume": str,
    "optimized_metric": str,
}


def unknown_key_error(key: str, valid: Sequence[str]) -> ConfigError:
    """The error for an unknown ``key`` (dotted path): the nearest valid names, or all of them."""
    parent, _, name = key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
    best = difflib.SequenceMatcher(None, name, close[0]).ratio() if close else 0.0
    close = [candidate for candidate in close if difflib.SequenceMatcher(None, name, candidate).ratio() >= best - 0.05]
    if close:
        hint = "Did you mean " + " or ".join(f"'{prefix}{candidate}'" for candidate in close) + "?"
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


def _check_value(key: str, value: Any, annotation: Any) -> None:
    if not matches_type(value, annotation):
        shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        raise ConfigError(f"{key}={shown!r} has the wrong type: expected {_describe(annotation)}.")


def _node_value(node: DictConfig, key: str, path: str) -> Any:
    if OmegaConf.is_missing(node, key):
        raise ConfigError(f"{path} has no value (???); set it on the command line, e.g. {path}=...")
    return node[key]


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
            _check_value(f"{path}.{key}", _node_value(node, key, f"{path}.{key}"), training_keys[key])
            continue
        if key not in valid and not takes_any_keyword:
            raise unknown_key_error(f"{path}.{key}", valid)
        value = _node_value(node, key, f"{path}.{key}")
        if value is None and key in RUNTIME_ARGUMENTS.get(path, ()):
            continue
        _check_value(f"{path}.{key}", value, hints.get(key, Any))


def check_dataclass_node(node: DictConfig, schema: type, path: str) -> None:
    """Check ``node`` has exactly the fields of ``schema`` (a dataclass), with their types."""
    fields = {field.name: field for field in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in node:
        if key not in fields:
            raise unknown_key_error(f"{path}.{key}", list(fields))
        _check_value(f"{path}.{key}", _node_value(node, key, f"{path}.{key}"), hints[key])
    absent = [name for name, field in fields.items() if name not in node and field.default is dataclasses.MISSING]
    if absent:
        raise ConfigError(f"{path} lacks the key(s) {', '.join(absent)}.")


def check_structure(cfg: DictConfig) -> None:
    """Unknown keys and wrong types anywhere in ``cfg``."""
    for key in cfg:
        if key not in TOP_LEVEL:
            raise unknown_key_error(key, list(TOP_LEVEL))
        schema, value = TOP_LEVEL[key], _node_value(cfg, key, key)
        if key == "data" and isinstance(value, DictConfig) and "_target_" in value:
            schema = _Instantiable  # labelled files for classification (framework.data.LabelledTextFiles)
        if schema is _Instantiable:
            check_instantiable(value, key)
        elif schema is _InstantiableMap:
            for name in value:
                if value[name] is not None:
                    check_instantiable(value[name], f"{key}.{name}")
        elif dataclasses.is_dataclass(schema):
            _check_value(key, value, dict)
            check_dataclass_node(value, schema, key)
        else:
            _check_value(key, value, schema)
    if "source" in cfg.data:
        check_instantiable(cfg.data.source, "data.source")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_language_modeling_data(data: DictConfig, model: DictConfig) -> None:
    _require(0 < data.val_fraction < 1, f"data.val_fraction={data.val_fraction} must be strictly between 0 and 1.")
    for key in ("block_size", "batch_size"):
        _require(data[key] >= 1, f"data.{key}={data[key]} must be at least 1.")
    unknown_steps = [step for step in data.cleaning if step not in CLEANING_STEPS]
    _require(not unknown_steps, f"Unknown data.cleaning step(s) {unknown_steps}; valid steps are {sorted(CLEANING_STEPS)}.")
    if "block_size" in model:
        _require(
            data.block_size <= model.block_size,
            f"data.block_size={data.block_size} is larger than the model's context model.block_size="
            f"{model.block_size}; lower data.block_size or raise model.block_size.",
        )


def _check_sizes(cfg: DictConfig) -> None:
    """Positive sizes and dropout in [0, 1) wherever a model, tokenizer or labelled data has them."""
    for group, keys in (("model", MODEL_SIZES), ("tokenizer", ("num_words", "vocab_size")), ("data", ("max_length",))):
        node = cfg[group]
        for key in keys:
            value = node.get(key)
            _require(not isinstance(value, int) or value >= 1, f"{group}.{key}={value} must be a positive integer.")
    dropout = cfg.model.get("dropout")
    _require(dropout is None or 0 <= dropout < 1, f"model.dropout={dropout} must be in [0, 1).")


def _check_task_fits(cfg: DictConfig) -> None:
    """The task, the data and the model must be of one kind: language modelling or classification."""
    try:
        task_class, model_class = (hydra.utils.get_class(node._target_) for node in (cfg.task, cfg.model))
    except Exception:  # not importable: check_structure names the key
        return
    classification = "_target_" in cfg.data
    task_is_classification = issubclass(task_class, _classification_task())
    model_reads_mask = "mask" in inspect.signature(model_class.forward).parameters
    kind = "classification" if task_is_classification else "language_modeling"
    _require(
        classification == task_is_classification,
        f"task={kind} needs {'labelled data (data=sst2 or data=labelled_files)' if task_is_classification else 'a text corpus (data=stdlib, text_files or tinyshakespeare)'}, "
        f"but data is {'labelled files' if classification else 'a text corpus'}; choose a matching data option.",
    )
    _require(
        model_reads_mask == task_is_classification,
        f"model {cfg.model._target_} does not fit task={kind}; use "
        f"{'model=lstm_classifier or model=transformer_classifier' if task_is_classification else 'model=gpt or model=lstm'}.",
    )


def _classification_task() -> type:
    from framework.tasks import ClassificationTask  # the task package imports torch and Lightning

    return ClassificationTask


def check_rules(cfg: DictConfig) -> None:
    """Cross-field and range rules that types alone cannot express."""
    data, model, trainer = cfg.data, cfg.model, cfg.trainer
    _check_sizes(cfg)
    if "_target_" in data:
        _require(data.batch_size >= 1, f"data.batch_size={data.batch_size} must be at least 1.")
        if "block_size" in model:
            _require(
                data.max_length <= model.block_size,
                f"data.max_length={data.max_length} is longer than model.block_size={model.block_size}; raise model.block_size.",
            )
    else:
        _check_language_modeling_data(data, model)
    _require(data.num_workers >= 0, f"data.num_workers={data.num_workers} must be 0 or more.")
    _require(
        trainer.max_steps >= 1,
        f"trainer.max_steps={trainer.max_steps} must be a positive number of optimizer steps.",
    )
    _require(
        trainer.accumulate_grad_batches >= 1,
        f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} must be at least 1.",
    )
    if "n_embd" in model and "n_head" in model:
        _require(
            model.n_head >= 1 and model.n_embd % model.n_head == 0,
            f"model.n_embd={model.n_embd} is not divisible by model.n_head={model.n_head}; "
            "choose n_head among the divisors of n_embd.",
        )
    if model.get("vocab_size") is not None and cfg.tokenizer.get("vocab_size") is not None:
        _require(
            cfg.tokenizer.vocab_size <= model.vocab_size,
            f"tokenizer.vocab_size={cfg.tokenizer.vocab_size} is larger than the model's embedding table "
            f"model.vocab_size={model.vocab_size}; set model.vocab_size=null to follow the tokenizer.",
        )
    warmup = cfg.scheduler.get("warmup_steps")
    if warmup is not None:
        _require(
            0 <= warmup < trainer.max_steps,
            f"scheduler.warmup_steps={warmup} must be >= 0 and below trainer.max_steps={trainer.max_steps}.",
        )
    for key in ("lr", "weight_decay"):
        if cfg.optimizer.get(key) is not None:
            _require(cfg.optimizer[key] >= 0, f"optimizer.{key}={cfg.optimizer[key]} must be >= 0.")
    min_lr, lr = cfg.scheduler.get("min_lr"), cfg.optimizer.get("lr")
    if min_lr is not None and lr is not None:
        _require(0 <= min_lr <= lr, f"scheduler.min_lr={min_lr} must be between 0 and optimizer.lr={lr}.")
    logged = getattr(hydra.utils.get_object(cfg.task._target_), "METRICS", {})
    _require(
        cfg.optimized_metric in logged,
        f"optimized_metric={cfg.optimized_metric} is never logged by {cfg.task._target_}; "
        f"it logs {', '.join(logged)}.",
    )
    _check_strategy_device(trainer)
    _check_fused_clipping(cfg.optimizer, trainer)
    _check_compiler(model, trainer)
    _require("compile_model" not in cfg.task, "task.compile_model is set from model.compile; use model.compile=true instead.")
    sample = cfg.sample
    _require(sample.prompt != "", "sample.prompt is empty; give at least one character to start the sample from.")
    _require(sample.max_new_tokens >= 0, f"sample.max_new_tokens={sample.max_new_tokens} must be 0 or more.")
    _require(sample.temperature > 0, f"sample.temperature={sample.temperature} must be > 0.")
    _require(sample.top_k is None or sample.top_k >= 1, f"sample.top_k={sample.top_k} must be null or at least 1.")


def _on_cpu(trainer: DictConfig) -> bool:
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
    """Check ``cfg`` completely: keys, types, then cross-field rules.

    Raises:
        ConfigError: the first problem found, in one paragraph naming the key and value.
    """
    _check_task_fits(cfg)  # first: a mismatched model's interpolations may not resolve
    check_structure(cfg)
    check_rules(cfg)
