"""Commands refused for bad input, as a user meets them: one paragraph on stderr, exit status 2,
and nothing left behind or changed in a run directory (subprocesses, marked slow; the cases of
``AttemptFiles`` itself are in tests/unit/cli/test_attempt.py)."""

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = [
    "data=text_files",
    "tokenizer=char",
    "logger=csv",
    "data.block_size=32",
    "data.batch_size=8",
    "model.n_layer=1",
    "model.n_embd=32",
    "model.n_head=2",
    "trainer.val_check_interval=5",
    "trainer.limit_val_batches=2",
    "scheduler.warmup_steps=2",
    "callbacks.progress=null",
    "sample.max_new_tokens=5",
]


def contents(directory: Path, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``directory`` (relative name -> sha256), except the names in ``leave_out``."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name not in leave_out
    }


def assert_refused(result, named: str) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and named in error


@pytest.mark.parametrize(
    "override, named",
    [
        ("data.path=missing.txt", "missing.txt does not exist; check data.path."),  # bad data, found in the job
        ("data.block_size='${oc.decode:2}'", "data.block_size"),  # an interpolation that does not resolve
    ],
)
def test_a_refused_new_run_leaves_no_directory(tmp_path, run_module, override, named):
    result = run_module(
        "framework.train",
        *TINY,
        "data.path=corpus.txt",
        override,
        "hydra.run.dir=runs/new",
        f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )
    assert_refused(result, named)
    assert not (tmp_path / "runs" / "new").exists()


def test_a_refused_resume_changes_nothing_and_appends_its_error_to_train_log(tmp_path, run_module, shakespeare_path):
    (tmp_path / "corpus.txt").write_text(shakespeare_path.read_text()[:30_000])
    common = [*TINY, f"paths.cache_dir={tmp_path / 'cache'}", "hydra.run.dir=run"]
    assert run_module("framework.train", *common, "data.path=corpus.txt", "trainer.max_steps=10", cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "run"  # a finished run, made by the command itself: .hydra/, train.log, run.json, checkpoints
    before, log_before = contents(run_dir, leave_out=("train.log",)), (run_dir / "train.log").read_text()

    for override, named in (("data.path=missing.txt", "missing.txt does not exist"), ("model.n_embd=64", "parameter(s) differ")):
        result = run_module("framework.train", *common, "data.path=corpus.txt", override, "trainer.max_steps=20", cwd=tmp_path)
        assert_refused(result, named)
        assert contents(run_dir, leave_out=("train.log",)) == before  # no .hydra/attempt-*, no new run.json, checkpoints as they were
        log = (run_dir / "train.log").read_text()
        assert log.startswith(log_before) and named in log.splitlines()[-1]
        log_before = log
