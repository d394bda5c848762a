"""``manifest.json`` of a prepared dataset: what went in, what each step did, what came out.

Fields: ``format``, ``hash`` (of every setting and input that decides the content),
``name`` (the source's), ``inputs`` (path, bytes, xxh3-128 of the content), ``stages`` (per stage, per step, datatrove's
counters: documents in, dropped with the reason, forwarded), ``tokens`` and ``documents`` per
split, ``token_dtype``, ``eos_token``, ``tokenizer`` (sha256, vocab_size, eos_id, sample_bytes),
``config`` (resolved) and ``versions``.
"""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep

from framework.data.prepared_format import FORMAT, SPLITS
from framework.errors import ConfigError

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


OURS = ("train", "val", "stages", "tokenizer.json")


def already_prepared(output: Path, expected_hash: str) -> bool:
    """Whether ``output`` holds this preparation's finished dataset. If not, ``output`` is made
    ready for it: the unfinished files of another preparation (``stages/hash`` differs) are
    removed, and ``stages/hash`` records this one's.

    Raises:
        ConfigError: ``output`` holds a different finished preparation, or files that are not
            a preparation's.
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
    if output.is_dir() and any(path.name not in OURS for path in output.iterdir()):
        raise ConfigError(f"output.dir={output} is not empty and holds no manifest.json; choose an empty or new folder.")
    marker = output / "stages" / "hash"
    if output.is_dir() and (not marker.is_file() or marker.read_text() != expected_hash):
        for name in OURS:  # an interrupted preparation with other settings: its shards must not be reused
            path = output / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(expected_hash)
    return False


def step_counters(task_stats: list[list[dict]]) -> list[dict]:
    """datatrove's per-task, per-step stats summed over tasks: each step's name, its counters
    (``total`` documents in, ``dropped`` and ``dropped_<reason>``, ``forwarded``, ``doc_len``
    characters, ``tokens``, ...) and ``seconds`` (its own time, all tasks together)."""
    steps: list[dict] = []
    for task in task_stats:
        for index, step in enumerate(task):
            if index == len(steps):
                steps.append({"step": step["name"], "seconds": 0.0})
            time_stats = step.get("time_stats")
            steps[index]["seconds"] += time_stats["total"] if isinstance(time_stats, dict) else 0.0
            for key, value in step.get("stats", {}).items():
                total = value["total"] if isinstance(value, dict) else value
                steps[index][key] = steps[index].get(key, 0) + total
    return steps


def step_label(step: str) -> str:
    """datatrove's step name without its type prefix and symbols: '🔻 - FILTER: 👯 Gopher Repetition' -> 'FILTER: Gopher Repetition'."""
    return " ".join(word for word in step.split(" - ", 1)[-1].split() if word.isascii())


def split_figures(folder: Path) -> dict:
    """Tokens and documents of one split's shards (from their ``.ds.index`` files)."""
    shards = sorted(folder.glob("*.ds"))
    ends = [np.fromfile(f"{shard}.index", dtype=np.uint64) for shard in shards]
    return {
        "shards": [shard.name for shard in shards],
        "tokens": int(sum(int(e[-1]) for e in ends if len(e))),
        "documents": int(sum(len(e) for e in ends)),
    }


class WriteManifest(PipelineStep):
    """The last, one-task stage of a dataset: copies the tokenizer beside the shards and writes
    ``manifest.json`` (last, so its presence marks a finished dataset).

    Args:
        output: the dataset folder.
        dataset_hash: the dataset's hash (``manifest.json``'s ``hash``).
        name: the source's name.
        inputs: :func:`describe_inputs` of its files.
        stages: ``(name, logging folder)`` of each stage of this dataset, in order.
        tokenizer: the tokenizer stage's output folder.
        config: the resolved config.
        eos_token: the document separator.
    """

    name = "manifest"
    type = "📋 - MANIFEST"

    def __init__(
        self,
        output: str,
        dataset_hash: str,
        name: str,
        inputs: list[dict],
        stages: list[tuple[str, str]],
        tokenizer: str,
        config: dict,
        eos_token: str,
    ) -> None:
        super().__init__()
        self.output, self.hash, self.source = Path(output), dataset_hash, name
        self.inputs, self.stages, self.tokenizer, self.config, self.eos_token = inputs, stages, Path(tokenizer), config, eos_token

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        shutil.copyfile(self.tokenizer / "tokenizer.json", self.output / "tokenizer.json")
        tokenizer = json.loads((self.tokenizer / "tokenizer_info.json").read_text())
        record = {
            "format": FORMAT,
            "hash": self.hash,
            "name": self.source,
            "inputs": self.inputs,
            "stages": [
                {"stage": stage, "directory": str(Path(logs).parent), "steps": step_counters(task_stats(Path(logs)))}
                for stage, logs in self.stages
            ],
            "splits": {split: split_figures(self.output / split) for split in SPLITS},
            "token_dtype": "uint16" if tokenizer["vocab_size"] <= 1 << 16 else "uint32",
            "eos_token": self.eos_token,
            "tokenizer": tokenizer,
            "config": self.config,
            "versions": {"lm-framework": version("lm-framework"), "datatrove": version("datatrove")},
        }
        (self.output / "manifest.json").write_text(json.dumps(record, indent=2) + "\n")
        return iter(())


def task_stats(logs: Path) -> list[list[dict]]:
    """datatrove's stats of each task of a stage (its logging folder), in task order."""
    return [json.loads(path.read_text()) for path in sorted((logs / "stats").glob("*.json"))]
