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

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from framework.data.prepared_format import SPLITS
from framework.data.token_cache import check_val_fraction
from framework.errors import ConfigError, DataError, UserInputError
from framework.prepare import manifest
from framework.prepare.dedup import dedup_stages
from framework.prepare.manifest import WriteManifest
from framework.prepare.readers import build_reader, input_files
from framework.prepare.stages import Chain, PlannedStage, Progress, Stage, check_executor, run_stages, settings_hash
from framework.prepare.steps import SplitFilter
from framework.prepare.tokenizer import TrainTokenizer, checked_tokenizer_settings

# Documents encoded at once. HF tokenizers' encodings take about 300 bytes a token: datatrove's
# default batch of 10,000 documents of 3 KB holds 3 GB in each worker, more for longer documents.
TOKENIZE_BATCH_DOCUMENTS = 1000


def filter_steps(filters: DictConfig) -> list:
    """The configured cleaning and filter steps, in the order ``filters`` lists them.

    Raises:
        ConfigError: a filter option whose node is not a step config (no ``_target_``).
    """
    steps = []
    for name, node in filters.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"filters.{name} is not a filter config (a node with _target_); choose options from conf/prepare/filters.")
        try:
            steps.append(hydra.utils.instantiate(node))
        except InstantiationException as error:  # a step's own check of its settings
            if isinstance(error.__cause__, UserInputError):
                raise error.__cause__ from None
            raise
    return steps


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
            raise ConfigError(
                "No input given: set input.path=<file or glob>, or +input.sources.<name>.path=<file or glob> for several sources."
            )
        return {None: OmegaConf.create({**shared, "path": input_config.path, "name": input_config.name})}
    if input_config.path:
        raise ConfigError("Give either input.path (one source) or input.sources.<name>.path (several), not both.")
    result = {}
    for name, source in sources.items():
        if not source or not source.get("path"):
            raise ConfigError(f"input.sources.{name} has no path; give input.sources.{name}.path=<files>.")
        unknown = sorted(set(source) - set(shared) - {"path"})
        if unknown:
            raise ConfigError(f"input.sources.{name}.{unknown[0]} is not an input setting; valid: path, {', '.join(sorted(shared))}.")
        result[name] = OmegaConf.create({**shared, **OmegaConf.to_container(source), "name": name})
    return result


@dataclass
class Source:
    """One source's plan: its name, described input files and its chain of stages."""

    name: str
    inputs: list[dict]
    chain: Chain


@dataclass
class Prepared:
    """What :func:`prepare` made: the folder to train on, each dataset by source name, and
    whether the datasets are finished (False: submitted to Slurm, still to run)."""

    folder: Path
    datasets: dict[str, Path]
    finished: bool


def documents_left(planned: PlannedStage) -> None:
    """Raise DataError when the filter stage kept no document, naming the filter that removed
    the last ones (the last step that dropped any) and how many it dropped."""
    steps = manifest.step_counters(manifest.task_stats(planned.logs))
    if steps and steps[-1].get("total", 0) > 0:
        return
    droppers = [step for step in steps if step.get("dropped")]
    culprit = droppers[-1] if droppers else None
    blame = (
        f"the last ones by {manifest.step_label(culprit['step'])} ({culprit['dropped']:,} of {culprit['total']:,} dropped)"
        if culprit
        else "none was read"
    )
    raise DataError(
        f"Every document of {planned.directory.parent.name} was removed by the filters: {blame}. "
        "Loosen that filter's settings (filters.<name>.<key>=...) or choose other filters (prepare/filters=[...]); "
        "for source code, prepare/filters=code."
    )


@dataclass
class CheckedSource:
    """One source whose settings and files have been checked (nothing read yet)."""

    name: str
    settings: dict
    files: list[Path]
    reader: object


def check_source(name: str | None, input_config: DictConfig) -> CheckedSource:
    """Check one source's files (they exist, are non-empty regular files of one supported kind)
    and reader settings.

    Raises:
        MissingInputError, ConfigError: see :func:`~framework.prepare.readers.input_files` and
            :func:`~framework.prepare.readers.build_reader`.
    """
    key = f"input.sources.{name}" if name else "input"
    files = input_files(input_config.path, setting=f"{key}.path")
    reader = build_reader(input_config, files, key)
    name = name or input_config.name or (files[0].name.split(".")[0] if len(files) == 1 else files[0].parent.name)
    return CheckedSource(name, OmegaConf.to_container(input_config, resolve=True), files, reader)


def split_not_empty(name: str, split: str, val_fraction: float) -> Callable[[PlannedStage], None]:
    """A check for a tokenize stage: DataError when the split it wrote holds no document."""

    def check(planned: PlannedStage) -> None:
        if manifest.split_figures(planned.output)["documents"] == 0:
            raise DataError(
                f"The {split} split of {name} is empty: no document was chosen for it at output.val_fraction={val_fraction}. "
                "Give more documents (for .txt files, input.txt_documents=paragraphs makes one per paragraph) or "
                "change output.val_fraction."
            )

    return check


def plan_source(checked: CheckedSource, cfg: DictConfig, steps: list) -> Source:
    """Hash one source's input files (with the code's versions) and plan its cleaning and dedup stages."""
    from datatrove.pipeline.writers import JsonlWriter

    inputs = manifest.describe_inputs(checked.files)
    versions = {package: version(package) for package in ("lm-framework", "datatrove")}
    chain = Chain(
        Path(cfg.paths.cache_dir) / "prepare" / checked.name, settings_hash({"inputs": inputs, "versions": versions}), cfg.executor.tasks
    )
    # the filters as a list: their order decides the output, and hashed JSON has its keys sorted;
    # a step's fingerprint names what its config does not (the content of a model file it reads)
    filters = [
        [name, OmegaConf.to_container(node, resolve=True), step.fingerprint() if hasattr(step, "fingerprint") else {}]
        for (name, node), step in zip(cfg.filters.items(), steps)
    ]
    reader = checked.reader
    chain.add(
        Stage(
            "filter",
            {"input": checked.settings, "filters": filters},
            lambda output, folders: [reader, *steps, JsonlWriter(str(output))],
            check=documents_left,
        )
    )
    for stage in dedup_stages(cfg.dedup):
        chain.add(stage)
    return Source(checked.name, inputs, chain)


def prepare(
    cfg: DictConfig,
    finished: Callable[[int, int, PlannedStage, float], None] = lambda *_: None,
    progress: Callable[[int, int, Progress], None] | None = None,
) -> Prepared:
    """Prepare the dataset(s) ``cfg`` describes.

    Every setting and input file is checked before the first stage runs. Re-running an
    unchanged preparation hashes the inputs and returns without running a stage; an
    interrupted one completes. ``finished`` is
    called after each stage that ran here: its index, the number of stages, the stage and its
    wall time in seconds; ``progress``, while a stage runs, with its index, the number of stages
    and its :class:`~framework.prepare.stages.Progress` (the command prints both).

    Raises:
        ConfigError, MissingInputError, DataError: bad settings or input (a ``DataError`` from a
            file is raised when the stage reading it meets the fault).
    """
    steps = filter_steps(cfg.filters)
    check_val_fraction(cfg.output.val_fraction, "output.val_fraction")
    check_executor(cfg.executor)
    dedup_stages(cfg.dedup)  # checks its settings
    tokenizer_config = checked_tokenizer_settings(OmegaConf.to_container(cfg.tokenizer, resolve=True))
    inputs = source_inputs(cfg.input)
    checked = [check_source(name, input_config) for name, input_config in inputs.items()]
    sources = [plan_source(source, cfg, steps) for source in checked]  # reads and hashes every input file

    cache = Path(cfg.paths.cache_dir) / "prepare"
    documents = [source.chain.planned[-1].output for source in sources]
    shared = {"val_fraction": cfg.output.val_fraction, "eos_token": cfg.output.eos_token}
    tokenizer_chain = Chain(cache / "tokenizers", settings_hash({"sources": [source.chain.hash for source in sources]}), 1)
    tokenizer = tokenizer_chain.add(
        Stage(
            "tokenizer",
            {"tokenizer": tokenizer_config, **shared},
            lambda output, folders: [
                TrainTokenizer(
                    tokenizer_config, cfg.output.eos_token, [str(folder) for folder in documents], cfg.output.val_fraction, str(output)
                )
            ],
        )
    )
    hashes = {
        source.name: settings_hash({"source": source.name, "chain": source.chain.hash, "tokenizer": tokenizer.hash}) for source in sources
    }
    default_parent = Path(cfg.paths.cache_dir) / "prepared"
    if None in inputs:
        (source,) = sources
        folder = Path(cfg.output.dir or default_parent / f"{source.name}-{hashes[source.name][:12]}").expanduser().resolve()
        datasets = {source.name: folder}
    else:
        folder = Path(cfg.output.dir or default_parent / f"mixture-{settings_hash(hashes)[:12]}").expanduser().resolve()
        datasets = {source.name: folder / source.name for source in sources}
    # a list, not a generator: every dataset folder is checked, and any holding another preparation refused
    if all([manifest.already_prepared(datasets[source.name], hashes[source.name]) for source in sources]):
        return Prepared(folder, datasets, finished=True)

    order = [(planned, source.chain.folders()) for source in sources for planned in source.chain.planned]
    order.append((tokenizer, {}))
    config = OmegaConf.to_container(cfg, resolve=True)
    for source, deduplicated in zip(sources, documents):
        output = datasets[source.name]
        for split in SPLITS:
            stage = Stage(
                f"tokenize-{split}",
                {"split": split, **shared},
                _tokenize(deduplicated, tokenizer.output / "tokenizer.json", split, cfg),
                directory=output / "stages" / f"tokenize-{split}",
                output=output / split,
                check=split_not_empty(source.name, split, cfg.output.val_fraction),
            )
            order.append((source.chain.add(stage, after=hashes[source.name]), {}))
        stages = [(planned.stage.name, str(planned.logs)) for planned in source.chain.planned]
        write = Stage(
            "manifest",
            {},
            lambda _output, _folders, output=output, source=source, stages=stages: [
                WriteManifest(
                    str(output),
                    hashes[source.name],
                    source.name,
                    source.inputs,
                    stages,
                    str(tokenizer.output),
                    config,
                    cfg.output.eos_token,
                )
            ],
            tasks=1,
            directory=output / "stages" / "manifest",
        )
        order.append((source.chain.add(write, after=hashes[source.name]), {}))
    done = run_stages(
        cfg.executor,
        order,
        lambda index, planned, seconds: finished(index, len(order), planned, seconds),
        progress and (lambda index, state: progress(index, len(order), state)),
    )
    return Prepared(folder, datasets, done)


def _tokenize(documents: Path, tokenizer_file: Path, split: str, cfg: DictConfig):
    """The steps of one split's tokenization: read the deduplicated documents, keep this split's,
    write ``<dataset>/<split>/*.ds`` in input order."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    def steps(output: Path, folders: dict[str, Path]) -> list:
        return [
            JsonlReader(str(documents)),
            SplitFilter(split, cfg.output.val_fraction),
            DocumentTokenizer(
                str(output),
                tokenizer_name_or_path=str(tokenizer_file),
                eos_token=cfg.output.eos_token,
                save_filename=split,
                shuffle_documents=False,
                batch_size=TOKENIZE_BATCH_DOCUMENTS,
            ),
        ]

    return steps
