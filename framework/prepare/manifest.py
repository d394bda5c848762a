"""``manifest.json`` of a prepared dataset: what went in, what each step did, what came out.

Fields: ``format``, ``hash`` (of every setting and input that decides the content),
``name`` (the source's), ``inputs`` (path, bytes, xxh3-128 of the content), ``stages`` (per stage, per step, datatrove's
counters: documents in, dropped with the reason, forwarded), ``tokens`` and ``documents`` per
split, ``token_dtype``, ``eos_token``, ``tokenizer`` (sha256, vocab_size, eos_id, sample_bytes),
``config`` (resolved) and ``versions``.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from framework.data.prepared import FORMAT
from framework.errors import ConfigError
from framework.prepare.stages import Stage, StageRun, StageRunner, settings_hash

READ_BYTES = 1 << 24


def content_hash(path: Path) -> str:
    """xxh3-128 of the file's bytes, hex (about 10 GB/s: cheap next to reading the input once)."""
    import xxhash

    digest = xxhash.xxh3_128()
    with path.open("rb") as file:
        while block := file.read(READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def describe_inputs(files: list[Path]) -> list[dict]:
    """``{"path", "bytes", "xxh3_128"}`` of each input file, in order."""
    return [{"path": str(path), "bytes": path.stat().st_size, "xxh3_128": content_hash(path)} for path in files]


def dataset_hash(runner: StageRunner, stages: list[Stage], split_settings: dict) -> str:
    """The hash of everything that decides the dataset: the inputs, every stage's settings and
    tasks, the split and the tokenizer."""
    chained = runner.hash
    for stage in stages:
        chained = settings_hash({"previous": chained, "stage": stage.name, "tasks": stage.tasks or runner.config.tasks, **stage.settings})
    return settings_hash({"previous": chained, **split_settings})


def already_prepared(output: Path, expected_hash: str) -> bool:
    """Whether ``output`` holds this preparation's finished dataset.

    Raises:
        ConfigError: ``output`` holds a different preparation, or files that are not one.
    """
    path = output / "manifest.json"
    if path.is_file():
        found = json.loads(path.read_text()).get("hash")
        if found == expected_hash:
            return True
        raise ConfigError(
            f"output.dir={output} holds a different preparation (hash {found[:12]}, these settings give {expected_hash[:12]}); "
            "choose another output.dir, or leave it unset to name the folder after the settings."
        )
    if output.is_dir() and any(path.name not in ("train", "val", "stages", "tokenizer.json") for path in output.iterdir()):
        raise ConfigError(f"output.dir={output} is not empty and holds no manifest.json; choose an empty or new folder.")
    return False


def step_counters(task_stats: list[list[dict]]) -> list[dict]:
    """datatrove's per-task, per-step stats summed over tasks: each step's name and counters."""
    steps: list[dict] = []
    for task in task_stats:
        for index, step in enumerate(task):
            if index == len(steps):
                steps.append({"step": step["name"]})
            for key, value in step.get("stats", {}).items():
                total = value["total"] if isinstance(value, dict) else value
                steps[index][key] = steps[index].get(key, 0) + total
    return steps


def split_figures(folder: Path) -> dict:
    """Tokens and documents of one split's shards (from their ``.ds.index`` files)."""
    shards = sorted(folder.glob("*.ds"))
    ends = [np.fromfile(f"{shard}.index", dtype=np.uint64) for shard in shards]
    return {
        "shards": [shard.name for shard in shards],
        "tokens": int(sum(int(e[-1]) for e in ends if len(e))),
        "documents": int(sum(len(e) for e in ends)),
    }


def write(output: Path, hash_: str, cfg: DictConfig, name: str, inputs: list[dict], runs: list[StageRun], tokenizer: dict) -> dict:
    """Write ``output/manifest.json`` (last, so its presence marks a finished dataset); return it."""
    splits = {split: split_figures(output / split) for split in ("train", "val")}
    record = {
        "format": FORMAT,
        "hash": hash_,
        "name": name,
        "inputs": inputs,
        "stages": [{"stage": run.name, "directory": str(run.directory), "steps": step_counters(run.stats)} for run in runs],
        "splits": splits,
        "token_dtype": "uint16" if tokenizer["vocab_size"] <= 1 << 16 else "uint32",
        "eos_token": cfg.output.eos_token,
        "tokenizer": tokenizer,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": {"lm-framework": version("lm-framework"), "datatrove": version("datatrove")},
    }
    (output / "manifest.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
