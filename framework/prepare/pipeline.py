"""A preparation from config to datasets: read, clean and filter, deduplicate, train one
tokenizer, tokenize each split into shards, and write the manifest.

One source (``input.path``) gives one dataset folder; several (``input.sources.<name>.path``)
give a folder holding one dataset per source name, each cleaned and deduplicated on its own
and all tokenized with one tokenizer, so that training can mix them. A dataset folder holds
``train/`` and ``val/`` (datatrove's ``.ds`` token shards with their ``.ds.index`` of document
ends), ``tokenizer.json`` and ``manifest.json``; the intermediate stages are cached under
``<paths.cache_dir>/prepare/<name>/``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from framework.errors import ConfigError
from framework.prepare import manifest
from framework.prepare.dedup import dedup_stages
from framework.prepare.readers import build_reader, input_files
from framework.prepare.stages import Stage, StageRunner, settings_hash
from framework.prepare.steps import SplitFilter
from framework.prepare.tokenizer import prepared_tokenizer

SPLITS = ("train", "val")


def filter_steps(filters: DictConfig) -> list:
    """The configured cleaning and filter steps, in the order ``filters`` lists them.

    Raises:
        ConfigError: a filter option whose node is not a step config (no ``_target_``).
    """
    steps = []
    for name, node in filters.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"filters.{name} is not a filter config (a node with _target_); choose options from conf/prepare/filters.")
        steps.append(hydra.utils.instantiate(node))
    return steps


def check_val_fraction(val_fraction: float) -> None:
    """Raise ConfigError unless ``output.val_fraction`` is in (0, 1)."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"output.val_fraction={val_fraction} must be between 0 and 1 (exclusive).")


def source_inputs(input_config: DictConfig) -> dict[str, DictConfig]:
    """Each source's input settings by name: ``input.sources.<name>`` over the ``input``
    defaults, or the one source ``input.path`` names.

    Raises:
        ConfigError: neither or both of ``input.path`` and ``input.sources`` given, or a source without a path.
    """
    sources = input_config.get("sources") or {}
    shared = {key: value for key, value in OmegaConf.to_container(input_config).items() if key not in ("sources", "path", "name")}
    if not sources:
        if not input_config.path:
            raise ConfigError("No input given: set input.path=<file or glob>, or input.sources.<name>.path for several sources.")
        return {None: OmegaConf.create({**shared, "path": input_config.path, "name": input_config.name})}
    if input_config.path:
        raise ConfigError("Give either input.path (one source) or input.sources.<name>.path (several), not both.")
    result = {}
    for name, source in sources.items():
        if not source or not source.get("path"):
            raise ConfigError(f"input.sources.{name} has no path; give input.sources.{name}.path=<files>.")
        result[name] = OmegaConf.create({**shared, **OmegaConf.to_container(source), "name": name})
    return result


@dataclass
class Source:
    """One source's plan: its files, reader, stage runner and cleaning/dedup stages."""

    name: str
    files: list[Path]
    inputs: list[dict]
    runner: StageRunner
    stages: list[Stage]


def plan_source(name: str | None, input_config: DictConfig, cfg: DictConfig, steps: list) -> Source:
    """Check one source's files and settings and lay out its stages (nothing runs yet)."""
    from datatrove.pipeline.writers import JsonlWriter

    files = input_files(input_config.path)
    reader = build_reader(input_config, files)
    inputs = manifest.describe_inputs(files)
    name = name or input_config.name or (files[0].name.split(".")[0] if len(files) == 1 else files[0].parent.name)
    runner = StageRunner(cfg.executor, Path(cfg.paths.cache_dir) / "prepare" / name, settings_hash({"inputs": inputs}))
    settings = {"input": OmegaConf.to_container(input_config), "filters": OmegaConf.to_container(cfg.filters)}
    stages = [Stage("filter", settings, lambda output: [reader, *steps, JsonlWriter(str(output))]), *dedup_stages(cfg.dedup, runner)]
    return Source(name, files, inputs, runner, stages)


def prepare(cfg: DictConfig) -> Path:
    """Prepare the dataset(s) ``cfg`` describes and return the folder (for several sources, the
    folder holding one dataset per source name).

    Every setting and input file is checked before the first stage runs. Re-running an
    unchanged preparation returns at once; an interrupted one completes.

    Raises:
        ConfigError, MissingInputError, DataError: bad settings or input (a ``DataError`` from a
            file is raised when the stage reading it meets the fault).
    """
    steps = filter_steps(cfg.filters)
    check_val_fraction(cfg.output.val_fraction)
    inputs = source_inputs(cfg.input)
    sources = [plan_source(name, input_config, cfg, steps) for name, input_config in inputs.items()]
    split_settings = {
        "val_fraction": cfg.output.val_fraction,
        "tokenizer": OmegaConf.to_container(cfg.tokenizer),
        "eos_token": cfg.output.eos_token,
        # one tokenizer for all sources: each dataset depends on every source
        "sources": [manifest.dataset_hash(source.runner, source.stages, {}) for source in sources],
    }
    hashes = {source.name: settings_hash({"source": source.name, **split_settings}) for source in sources}
    several = None not in inputs
    default_parent = Path(cfg.paths.cache_dir) / "prepared"
    if several:
        parent = Path(cfg.output.dir or default_parent / f"mixture-{settings_hash(hashes)[:12]}").expanduser().resolve()
        outputs = {source.name: parent / source.name for source in sources}
    else:
        (source,) = sources
        parent = Path(cfg.output.dir or default_parent / f"{source.name}-{hashes[source.name][:12]}").expanduser().resolve()
        outputs = {source.name: parent}
    done = [manifest.already_prepared(outputs[source.name], hashes[source.name]) for source in sources]
    if all(done):
        return parent

    for source in sources:
        for stage in source.stages:
            source.runner.run(stage)
    documents = [source.runner.runs[-1].directory / "output" for source in sources]
    tokenizer_file, tokenizer_info = prepared_tokenizer(
        cfg.tokenizer, cfg.output.eos_token, documents, cfg.output.val_fraction, Path(cfg.paths.cache_dir) / "prepare"
    )
    for source, folder in zip(sources, documents):
        output = outputs[source.name]
        output.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tokenizer_file, output / "tokenizer.json")
        for split in SPLITS:
            source.runner.run(
                Stage(f"tokenize-{split}", {"split": split, **split_settings}, _tokenize(folder, output / "tokenizer.json", split, cfg)),
                directory=output / "stages" / f"tokenize-{split}",
                output=output / split,
            )
        manifest.write(output, hashes[source.name], cfg, source.name, source.inputs, source.runner.runs, tokenizer_info)
    return parent


def _tokenize(documents: Path, tokenizer_file: Path, split: str, cfg: DictConfig):
    """The steps of one split's tokenization: read the deduplicated documents, keep this split's,
    write ``<dataset>/<split>/*.ds`` in input order."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    def steps(output: Path) -> list:
        return [
            JsonlReader(str(documents)),
            SplitFilter(split, cfg.output.val_fraction),
            DocumentTokenizer(
                str(output),
                tokenizer_name_or_path=str(tokenizer_file),
                eos_token=cfg.output.eos_token,
                save_filename=split,
                shuffle_documents=False,
            ),
        ]

    return steps
