"""A preparation from config to dataset: read, clean and filter, deduplicate, train the
tokenizer, tokenize each split into shards, and write the manifest.

The dataset folder holds ``train/`` and ``val/`` (datatrove's ``.ds`` token shards with their
``.ds.index`` of document ends), ``tokenizer.json`` and ``manifest.json``; the intermediate
stages are cached under ``<paths.cache_dir>/prepare/<name>/``.
"""

from __future__ import annotations

import shutil
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


def prepare(cfg: DictConfig) -> Path:
    """Prepare the dataset ``cfg`` describes and return its folder.

    Every setting and input file is checked before the first stage runs. Re-running an
    unchanged preparation returns at once; an interrupted one completes.

    Raises:
        ConfigError, MissingInputError, DataError: bad settings or input (a ``DataError`` from a
            file is raised when the stage reading it meets the fault).
    """
    from datatrove.pipeline.writers import JsonlWriter

    files = input_files(cfg.input.path)
    reader = build_reader(cfg.input, files)
    steps = filter_steps(cfg.filters)
    check_val_fraction(cfg.output.val_fraction)
    inputs = manifest.describe_inputs(files)
    name = cfg.input.name or (files[0].stem.split(".")[0] if len(files) == 1 else files[0].parent.name)
    runner = StageRunner(cfg.executor, Path(cfg.paths.cache_dir) / "prepare" / name, settings_hash({"inputs": inputs}))
    stages = [
        Stage(
            "filter",
            {"input": OmegaConf.to_container(cfg.input), "filters": OmegaConf.to_container(cfg.filters)},
            lambda output: [reader, *steps, JsonlWriter(str(output))],
        ),
        *dedup_stages(cfg.dedup, runner),
    ]
    tokenizer_settings = {"tokenizer": OmegaConf.to_container(cfg.tokenizer), "eos_token": cfg.output.eos_token}
    split_settings = {"val_fraction": cfg.output.val_fraction, **tokenizer_settings}
    dataset_hash = manifest.dataset_hash(runner, stages, split_settings)
    output = Path(cfg.output.dir or Path(cfg.paths.cache_dir) / "prepared" / f"{name}-{dataset_hash[:12]}").expanduser().resolve()
    if manifest.already_prepared(output, dataset_hash):
        return output

    for stage in stages:
        runner.run(stage)
    documents = runner.runs[-1].directory / "output"
    tokenizer_file, tokenizer_info = prepared_tokenizer(
        cfg.tokenizer, cfg.output.eos_token, documents, cfg.output.val_fraction, runner.root
    )
    output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_file, output / "tokenizer.json")
    for split in SPLITS:
        runner.run(
            Stage(f"tokenize-{split}", {"split": split, **split_settings}, _tokenize(documents, output / "tokenizer.json", split, cfg)),
            directory=output / "stages" / f"tokenize-{split}",
            output=output / split,
        )
    manifest.write(output, dataset_hash, cfg, inputs, runner.runs, tokenizer_info)
    return output


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
