"""The ``--help`` text of every command: what it does, its config groups with their options (read
from ``conf/``, so the list cannot drift), the five most used keys with an example each, and the
other commands. Hydra's own help stays available as ``--hydra-help``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import textwrap
from dataclasses import dataclass

import yaml

from framework.cli.precheck import CONFIG_DIR

# Every console script, in the order a run uses them: (name, module, one line on what it does).
SCRIPTS = (
    ("train", "framework.train", "train a model from config groups; -m sweeps"),
    ("evaluate", "framework.evaluate", "score a finished run on its data, another corpus, or lm-eval tasks"),
    ("generate", "framework.generate", "sample text from a finished language-model run"),
    ("predict", "framework.predict", "label the lines of a file with a finished classifier run"),
    ("export", "framework.export", "write a run's weights as safetensors or a Hugging Face directory"),
    ("compare", "framework.compare", "table, plots and an HTML report of finished runs or sweeps"),
    ("reproduce", "framework.reproduce", "rerun a finished run from its run.json and compare the results"),
    ("consolidate", "framework.consolidate", "turn a sharded FSDP checkpoint into one file"),
    ("prepare", "framework.prepare", "clean, filter, deduplicate and tokenize a corpus into shards"),
    ("wandb-sweep", "framework.wandb_sweep", "turn an Optuna search config into a W&B sweep"),
)
DOCS = "Documentation: docs/ and the site make docs builds from it; its Reference > Configuration page lists every key."


@dataclass(frozen=True)
class HydraCommand:
    """The help of a command whose settings Hydra composes from ``conf/<name>.yaml``.

    Attributes:
        summary: what the command does, one paragraph.
        usage: the command line's shape.
        keys: the five most used overrides, each ``(example, what it does)``.
        settings: the dataclass of the command's own settings (finished-run commands), or None.
    """

    summary: str
    usage: str
    keys: tuple[tuple[str, str], ...]
    settings: str | None = None


HYDRA_COMMANDS = {
    "train": HydraCommand(
        summary="Train a model. The run's config is one option of each group below plus your key=value overrides; "
        "the run directory gets the resolved config, tokenizer, checkpoints, metrics.csv and the tracker's files. "
        "Running the same command into the same directory resumes it.",
        usage="python -m framework.train [group=option ...] [key=value ...]      (-m: a sweep over comma-separated values)",
        keys=(
            ("experiment=shakespeare_char", "a named recipe from experiments/"),
            ("data=text_files data.path='corpus/*.txt'", "train on your own text (.txt .md .py .jsonl)"),
            ("trainer.max_steps=2000", "optimizer steps to train"),
            ("optimizer.lr=3e-4", "the peak learning rate"),
            ("hydra.run.dir=logs/runs/mine", "name the run directory (default logs/runs/<date>_<time>_<token>)"),
        ),
    ),
    "evaluate": HydraCommand(
        summary="Score a finished run's checkpoint on every window or example of a split, print the record as JSON "
        "and append it to <run_dir>/evaluations.jsonl.",
        usage="python -m framework.evaluate run_dir=<run> [key=value ...]",
        keys=(
            ("run_dir=logs/runs/mine", "the run to evaluate"),
            ("checkpoint=last", "best (default), last, or a checkpoint file"),
            ("data.path=other.txt", "score another corpus's validation part with the run's tokenizer"),
            ("split=test data.test_file=test.tsv", "a classifier's labelled test file"),
            ("'harness.tasks=[shipped]'", "lm-evaluation-harness tasks, offline (the [eval] extra)"),
        ),
        settings="framework.cli.evaluate:EvaluateConfig",
    ),
    "generate": HydraCommand(
        summary="Sample text from a finished language-model run; the same seed gives the same text.",
        usage="python -m framework.generate run_dir=<run> [key=value ...]",
        keys=(
            ("run_dir=logs/runs/mine", "the run to sample from"),
            ("prompt='ROMEO:'", "the text to continue"),
            ("max_new_tokens=500", "tokens to generate"),
            ("temperature=0.8 top_k=40", "sampling temperature and top-k (top_p=0.95: nucleus)"),
            ("num_samples=3 seed=7", "several samples, and the seed they depend on"),
        ),
        settings="framework.cli.generate:GenerateConfig",
    ),
    "predict": HydraCommand(
        summary='Label each line of a file with a finished classifier run: one "<label>\\t<probability>" line per input line.',
        usage="python -m framework.predict run_dir=<run> input=<file> [key=value ...]",
        keys=(
            ("run_dir=logs/runs/sst2", "the classifier run"),
            ("input=reviews.txt", "one text per line"),
            ("output=predictions.tsv", "write there instead of stdout"),
            ("checkpoint=last", "best (default), last, or a checkpoint file"),
            ("batch_size=64", "lines per forward pass"),
        ),
        settings="framework.cli.predict:PredictConfig",
    ),
    "export": HydraCommand(
        summary="Write a finished run's weights with its config and tokenizer: safetensors, or a directory that "
        "transformers' GPT2LMHeadModel / BertForMaskedLM loads.",
        usage="python -m framework.export run_dir=<run> [key=value ...]",
        keys=(
            ("run_dir=logs/runs/mine", "the run to export"),
            ("format=hf", "safetensors (default) or hf"),
            ("output=exported/mine", "the folder to write (default <run_dir>/export-<format>)"),
            ("checkpoint=last", "best (default), last, or a checkpoint file"),
            ("run_dir=logs/runs/mlm format=hf", "a masked-LM run as BertForMaskedLM"),
        ),
        settings="framework.cli.export:ExportConfig",
    ),
    "prepare": HydraCommand(
        summary="Clean, filter, deduplicate and tokenize a corpus into token shards with a manifest, on datatrove's "
        "local, Slurm or Ray executor (the [prepare] extra); prints the folder to train on with data=prepared.",
        usage="python -m framework.prepare input.path=<files> [group=option ...] [key=value ...]",
        keys=(
            ("input.path='corpus/*.jsonl.gz'", "the input files (jsonl, jsonl.gz, txt, parquet)"),
            ("prepare/filters=[clean,length,c4]", "the filter steps, in order"),
            ("prepare/dedup=minhash", "exact (default), minhash or none"),
            ("tokenizer.vocab_size=8192", "the size of the tokenizer trained on the cleaned text"),
            ("prepare/executor=slurm", "local (default), slurm or ray"),
        ),
    ),
}


def _options(group: str) -> list[str]:
    folder = CONFIG_DIR / group
    return sorted(path.stem for path in folder.glob("*.yaml"))


def _defaults(config_name: str) -> dict[str, str]:
    """``group -> default option`` of ``conf/<config_name>.yaml``'s defaults list (lists joined)."""
    defaults = yaml.safe_load((CONFIG_DIR / f"{config_name}.yaml").read_text()).get("defaults", [])
    chosen = {}
    for entry in defaults:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            group = group.removeprefix("override ").lstrip("/")
            if group != "hydra" and (CONFIG_DIR / group).is_dir():
                chosen[group] = ",".join(option) if isinstance(option, list) else str(option)
    return chosen


def _groups_section(config_name: str) -> list[str]:
    defaults = _defaults(config_name)
    if not defaults:
        return []
    width = max(len(group) for group in defaults) + 2
    lines = ["Config groups (group=option; * marks the default):"]
    for group, default in defaults.items():
        options = [f"{name}*" if name in default.split(",") else name for name in _options(group)]
        lines.append(f"  {group:<{width}}{', '.join(options)}" + ("" if default != "None" else "   (none by default)"))
    if config_name == "train":
        lines.append(f"  {'hydra/launcher':<{width}}joblib, submitit_local (plugins), {', '.join(_options('hydra/launcher'))}")
    return lines


def _settings_section(reference: str) -> list[str]:
    module, name = reference.split(":")
    lines = ["Settings (key=default; ??? must be given):"]
    for field in dataclasses.fields(getattr(importlib.import_module(module), name)):
        if field.default is not dataclasses.MISSING:
            lines.append(f"  {field.name}={_shown_default(field.default)}")
        elif dataclasses.is_dataclass(field.default_factory):
            nested = field.default_factory()
            lines += [f"  {field.name}.{item.name}={_shown_default(getattr(nested, item.name))}" for item in dataclasses.fields(nested)]
        else:
            lines.append(f"  {field.name}.<key>=<value>   (overrides of the run's {field.name} config)")
    return lines


def _shown_default(value: object) -> str:
    return "null" if value is None else str(value)


def other_commands(name: str) -> str:
    """The lines naming every command but ``name``, with what each does."""
    width = max(len(module) for _, module, _ in SCRIPTS) + 2
    lines = ["Other commands (python -m <module>, or the lmf-<name> script):"]
    lines += [f"  python -m {module:<{width}}{what}" for other, module, what in SCRIPTS if other != name]
    return "\n".join(lines)


def _hydra_command_help(name: str) -> str:
    command = HYDRA_COMMANDS[name]
    width = max(len(example) for example, _ in command.keys) + 2
    sections = [
        textwrap.wrap(f"python -m framework.{name} (lmf-{name}): {command.summary}", width=100),
        [f"Usage: {command.usage}"],
        _groups_section(name),
        _settings_section(command.settings) if command.settings else [],
        ["Most used keys:", *(f"  {example:<{width}}{what}" for example, what in command.keys)],
        ["Also: --cfg job prints the composed config without running; -m runs a sweep (key=a,b); --hydra-help lists Hydra's own flags."],
        [other_commands(name)],
        [DOCS],
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def command_help(name: str) -> str:
    """The text ``python -m framework.<name> --help`` prints.

    Args:
        name: a command of :data:`SCRIPTS` (``train``, ``evaluate``, ..., ``wandb-sweep``).

    Raises:
        KeyError: ``name`` is not a command.
    """
    if name in HYDRA_COMMANDS:
        return _hydra_command_help(name)
    module = dict((script, module) for script, module, _ in SCRIPTS)[name]
    parser: argparse.ArgumentParser = importlib.import_module(module.replace("framework.", "framework.cli.")).build_parser()
    return parser.format_help()


def epilog(name: str, examples: tuple[str, ...]) -> str:
    """The end of an argparse command's help: examples, the other commands and where the docs are."""
    return "\n\n".join(["Examples:\n" + "\n".join(f"  {example}" for example in examples), other_commands(name), DOCS])


def print_help_if_asked(name: str, arguments: list[str]) -> bool:
    """Print :func:`command_help` when ``arguments`` ask for help (``-h``/``--help``); True if printed."""
    if not {"-h", "--help"} & set(arguments):
        return False
    print(command_help(name), end="")
    return True
