"""run.json and `python -m framework.reproduce` (end-to-end, marked slow)."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_run_record_and_reproduce(tmp_path, shakespeare_path, run_module):
    run = run_module
    (tmp_path / "corpus.txt").write_text(shakespeare_path.read_text()[:50_000])
    overrides = [
        "data=text_files",
        "data.path=corpus.txt",
        "tokenizer=char",
        "logger=csv",
        "trainer.deterministic=true",
        "data.block_size=32",
        "data.batch_size=8",
        "model.n_layer=1",
        "model.n_embd=32",
        "model.n_head=2",
        "model.dropout=0.1",
        "trainer.max_steps=20",
        "trainer.val_check_interval=10",
        "trainer.limit_val_batches=2",
        "scheduler.warmup_steps=5",
        "callbacks.progress=null",
        "sample.max_new_tokens=5",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    run_dir = tmp_path / "original"
    # the job runs in its run directory; data.path=corpus.txt still means tmp_path/corpus.txt
    trained = run("framework.train", *overrides, f"hydra.run.dir={run_dir}", "hydra.job.chdir=true", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]

    record = json.loads((run_dir / "run.json").read_text())
    assert record["overrides"] == overrides
    assert record["command"][1:3] == ["-m", "framework.train"] and record["command"][3:] == [
        *overrides,
        f"hydra.run.dir={run_dir}",
        "hydra.job.chdir=true",
    ]
    assert record["cwd"] == str(tmp_path) and record["seed"] == 1337 and record["status"] == "finished"
    assert len(record["git"]["commit"]) == 40 and isinstance(record["git"]["dirty"], bool)
    assert set(record["versions"]) >= {"python", "torch", "pytorch-lightning", "hydra-core", "tokenizers", "wandb"}
    assert record["hostname"] and record["started_at"].endswith("+00:00")
    assert record["config"]["paths"]["run_dir"] == str(run_dir) and "${" not in json.dumps(record["config"])
    # relative paths are stored absolute, so later commands work from any directory
    assert record["config"]["data"]["path"] == record["config"]["data"]["source"]["path"] == str(tmp_path / "corpus.txt")
    assert record["final"]["step"] == 20 and set(record["final"]["metrics"]) == {"val/loss", "val/ppl", "val/bpc", "val/bpb"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    reproduced = run("framework.reproduce", str(run_dir), cwd=elsewhere)
    assert reproduced.returncode == 0, reproduced.stderr[-3000:]
    again = json.loads((tmp_path / "original-reproduced" / "run.json").read_text())
    assert again["final"]["metrics"] == record["final"]["metrics"]
    loss = f"{record['final']['metrics']['val/loss']:.6f}"
    assert any(line.count(loss) == 2 and "+0" in line for line in reproduced.stdout.splitlines() if "val/loss" in line)
    again = run("framework.reproduce", str(run_dir), cwd=tmp_path)
    assert again.returncode == 2 and "original-reproduced already exists; pass --into" in again.stderr
