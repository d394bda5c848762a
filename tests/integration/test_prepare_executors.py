"""The same preparation on datatrove's other executors: a local Ray cluster, and Slurm
submission (sbatch replaced by a recorder)."""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from framework.prepare.pipeline import prepare

pytestmark = pytest.mark.slow

SETTINGS = ["prepare/filters=[clean,length]", "tokenizer=char", "executor.tasks=2", "output.val_fraction=0.05"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare_path):
    """Two JSONL files of Tiny Shakespeare's paragraphs, with repeats."""
    root = tmp_path_factory.mktemp("executors")
    paragraphs = [text for text in shakespeare_path.read_text()[:200_000].split("\n\n") if text.strip()]
    (root / "input").mkdir()
    for index, texts in enumerate((paragraphs[::2], paragraphs[1::2] + paragraphs[:50:5])):
        (root / "input" / f"{index}.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return root / "input" / "*.jsonl"


def counters(manifest: dict) -> list:
    """Each stage's step counters, without the times."""
    return [[{key: value for key, value in step.items() if key != "seconds"} for step in stage["steps"]] for stage in manifest["stages"]]


def shard_ids(dataset: Path, split: str) -> np.ndarray:
    return np.concatenate([np.fromfile(path, dtype=np.uint16) for path in sorted((dataset / split).glob("*.ds"))])


def test_ray_gives_the_dataset_of_the_local_executor(corpus, prepare_config, tmp_path):
    import ray
    from ray.util.state import list_tasks

    local = prepare(prepare_config([f"input.path={corpus}", *SETTINGS, "executor.workers=1"], tmp_path / "local")).folder
    ray_bin = Path(sys.executable).with_name("ray")
    port, dashboard = free_port(), free_port()
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [ray_bin, "start", "--head", "--num-cpus=2", f"--port={port}", f"--dashboard-port={dashboard}", "--include-dashboard=true"],
        check=True,
        capture_output=True,
        env=environment,
        timeout=120,
    )
    try:
        on_ray = prepare(
            prepare_config(
                [f"input.path={corpus}", *SETTINGS, "prepare/executor=ray", f"executor.address=127.0.0.1:{port}"], tmp_path / "ray"
            )
        ).folder
        # Ray records tasks asynchronously: wait (up to 30 s) for the last stage's task to appear
        expected = 2 + 2 + 1 + 2 + 1 + 2 + 2 + 1
        for _ in range(60):
            names = [task.name for task in list_tasks(address=f"http://127.0.0.1:{dashboard}", limit=1000)]
            if sum("run_for_rank" in name for name in names) >= expected:
                break
            time.sleep(0.5)
    finally:
        ray.shutdown()
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=environment, timeout=120)

    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (local, on_ray)]
    assert manifests[0]["hash"] == manifests[1]["hash"]  # the executor is not part of the dataset's identity
    assert counters(manifests[0]) == counters(manifests[1]) and manifests[0]["splits"] == manifests[1]["splits"]
    for split in ("train", "val"):
        assert np.array_equal(shard_ids(local, split), shard_ids(on_ray, split))
    # Ray's record of what ran: one task per datatrove task of every stage (2 for most, 1 for
    # the exact-dedup finder, the tokenizer and the manifest)
    assert sum("run_for_rank" in name for name in names) == expected


FAKE_SBATCH = """#!/usr/bin/env python3
import json, pathlib, sys
log = pathlib.Path(sys.argv[0]).with_name("calls.jsonl")
calls = log.read_text().splitlines() if log.exists() else []
script = pathlib.Path(sys.argv[-1]).read_text()
with log.open("a") as file:
    file.write(json.dumps({"args": sys.argv[1:-1], "script": script}) + "\\n")
print(f"Submitted batch job {1000 + len(calls)}")
"""


def test_slurm_submits_each_stage_as_an_array_after_the_previous_one(corpus, prepare_config, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = prepare_config(
        [f"input.path={corpus}", *SETTINGS, "prepare/executor=slurm", "executor.partition=cpu", "+executor.sbatch_args.account=lm"],
        tmp_path,
    )
    prepared = prepare(cfg)
    assert not prepared.finished and not (prepared.folder / "manifest.json").exists()

    calls = [json.loads(line) for line in (bin_dir / "calls.jsonl").read_text().splitlines()]
    arrays = [call for call in calls if "launch_pickled_pipeline" in call["script"]]
    names = [
        next(line.split("=", 1)[1] for line in call["script"].splitlines() if line.startswith("#SBATCH --job-name")) for call in arrays
    ]
    assert names == [
        f"lmf-{stage}"
        for stage in ("filter", "exact-signature", "exact-find", "exact-filter", "tokenizer", "tokenize-train", "tokenize-val", "manifest")
    ]
    job_ids = {call["script"]: 1000 + index for index, call in enumerate(calls)}
    for previous, call in zip(arrays, arrays[1:]):
        assert f"--dependency=afterok:{job_ids[previous['script']]}" in call["args"]
    assert "--dependency" not in " ".join(arrays[0]["args"])
    first = arrays[0]["script"]
    assert "#SBATCH --partition=cpu" in first and "#SBATCH --account=lm" in first and "#SBATCH --array=0-1" in first
    assert shutil.which("sbatch") == str(bin_dir / "sbatch")
