"""Config checks before any work, and how bad input is reported."""

import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import check_command_line, user_errors_exit
from framework.errors import ConfigError, DataError, MissingInputError
from framework.schema import validate_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_step=3", r"Unknown config key 'trainer.max_step'. Did you mean 'trainer.max_steps'"),
        ("+trainer.max_step=3", r"Unknown config key 'trainer.max_step'. Did you mean 'trainer.max_steps'"),
        ("model.n_layers=2", r"Unknown config key 'model.n_layers'. Did you mean 'model.n_layer'"),
        ("+model.n_layers=2", r"Unknown config key 'model.n_layers'. Did you mean 'model.n_layer'"),
        ("optimizer.learning_rate=0.1", r"Unknown config key 'optimizer.learning_rate'"),
        ("modle.n_layer=2", r"Unknown config key 'modle'. Did you mean 'model'\?"),
        ("model=gtp", r"There is no model option 'gtp'. Did you mean model=gpt\? Options: gpt, lstm."),
        ("experiment=shakespeare", r"Did you mean experiment=shakespeare_char\?"),
        ("model.n_layer=four", r"model.n_layer='four' has the wrong type: expected an integer"),
        ("trainer.precision=bf17", r"trainer.precision='bf17' has the wrong type: expected one of .*'bf16-mixed'"),
        ("optimizer.betas=0.9", r"optimizer.betas=0.9 has the wrong type: expected a list"),
        ("model.n_head=3", r"model.n_embd=128 is not divisible by model.n_head=3"),
        ("scheduler.warmup_steps=600", r"scheduler.warmup_steps=600 must be >= 0 and below trainer.max_steps=600"),
        ("data.val_fraction=1.0", r"data.val_fraction=1.0 must be strictly between 0 and 1"),
        ("model.block_size=64", r"data.block_size=128 is larger than the model's context model.block_size=64"),
        ("model.vocab_size=1000", r"tokenizer.vocab_size=4096 is larger than the model's embedding table model.vocab_size=1000"),
        ("trainer.max_steps=0", r"trainer.max_steps=0 must be a positive number of optimizer steps"),
        ("optimizer.lr=-0.001", r"optimizer.lr=-0.001 must be >= 0"),
        ("data.batch_size=0", r"data.batch_size=0 must be at least 1"),
        ("sample.top_k=0", r"sample.top_k=0 must be null or at least 1"),
        ("logger.wandb.mode=offlien", r"logger.wandb.mode='offlien' has the wrong type: expected one of 'auto', 'online'"),
        ("model.compile=fast", r"model.compile='fast' has the wrong type: expected true or false"),
        ("model.compiled=true", r"Unknown config key 'model.compiled'. Did you mean 'model.compile'\?"),
        ("+task.compile_model=true", r"task.compile_model is set from model.compile; use model.compile=true instead"),
        ("trainer.precision=16-mixed", r"trainer.precision=16-mixed with trainer.gradient_clip_val=1.0 cannot use optimizer.fused=true"),
    ],
)
def test_bad_overrides_are_refused_before_any_work(override, message):
    with pytest.raises(ConfigError, match=message):
        check_command_line([override])


def test_compiling_on_cpu_without_a_cpp_compiler_is_refused_before_any_work(monkeypatch):
    monkeypatch.setattr("framework.schema.shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ConfigError, match=r"model.compile=true on CPU needs a C\+\+ compiler .* and g\+\+ \(the CXX environment variable, else Inductor's default\) is not on PATH"):
        check_command_line(["model.compile=true", "trainer.accelerator=cpu"])
    assert check_command_line(["model.compile=false", "trainer.accelerator=cpu"]) == ["model.compile=false", "trainer.accelerator=cpu"]


def test_a_key_of_another_group_option_is_named_not_a_required_key_before_it():
    # data.path is ??? (required) in data=text_files; the fault is model.n_head, which LSTMs lack
    with pytest.raises(ConfigError, match=r"^Unknown config key 'model.n_head'. Did you mean 'model.n_embd'\?"):
        check_command_line(["data=text_files", "data.path=corpus.txt", "model.n_head=2", "model=lstm"])


def test_sweeps_are_checked_by_their_first_value():
    assert check_command_line(["-m", "model=gpt,lstm", "optimizer.lr=1e-3,3e-4"]) == ["-m", "model=gpt,lstm", "optimizer.lr=1e-3,3e-4"]
    with pytest.raises(ConfigError, match="Did you mean 'optimizer.lr'"):
        check_command_line(["-m", "optimizer.lrr=1e-3,3e-4"])


def test_resume_directory_becomes_the_run_directory(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert check_command_line([f"resume={tmp_path}"]) == [f"resume={tmp_path}", f"hydra.run.dir={tmp_path.resolve()}"]
    with pytest.raises(ConfigError, match="nothing to resume"):
        check_command_line([f"resume={tmp_path / 'elsewhere'}"])


def test_existing_run_directory_is_protected(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match="resume=never, but .* already holds last.ckpt"):
        check_command_line([f"hydra.run.dir={tmp_path}", "resume=never"])
    arguments = check_command_line([f"hydra.run.dir={tmp_path}"])
    assert arguments[0] == f"hydra.run.dir={tmp_path}" and arguments[1].startswith("hydra.output_subdir=.hydra/attempt-")


def test_config_is_checked_before_data_is_read(make_config):
    cfg = make_config(["data=text_files", "data.path=/does/not/exist.txt", "model.n_head=5"])
    with pytest.raises(ConfigError, match="not divisible"):
        validate_config(cfg)


def test_user_errors_exit_with_status_2_and_one_paragraph(capsys):
    with pytest.raises(SystemExit) as exit_info, user_errors_exit():
        raise DataError("The val split has 3 tokens.")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "Error: The val split has 3 tokens.\n"
    with pytest.raises(SystemExit), user_errors_exit():
        raise MissingInputError("Corpus file x.txt does not exist; check data.path.")


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "framework.train", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(cwd)},
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["trainer.max_step=3"], "Unknown config key 'trainer.max_step'. Did you mean 'trainer.max_steps'?"),
        (["model.n_layer=four"], "model.n_layer='four' has the wrong type: expected an integer."),
    ],
)
def test_cli_refuses_bad_config_without_touching_the_run_directory(tmp_path, args, message):
    run_dir = tmp_path / "existing_run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("original\n")
    result = run_cli(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert sorted(path.name for path in run_dir.rglob("*")) == [".hydra", "config.yaml"]
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {message}"
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "original\n"


def test_cli_reports_a_missing_corpus_in_one_paragraph_with_status_2(tmp_path):
    result = run_cli("data=text_files", "data.path=missing.txt", "logger=csv", f"paths.cache_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Error: Corpus file missing.txt does not exist; check data.path."


def test_an_objective_that_is_never_logged_fails_fast():
    with pytest.raises(ConfigError, match=r"optimized_metric=val/acc is never logged by framework.tasks.LanguageModelingTask; it logs train/loss, val/loss, val/ppl, val/bpc"):
        check_command_line(["optimized_metric=val/acc"])


def test_run_and_sweep_directories_get_a_token_that_is_stable_within_a_config():
    from omegaconf import OmegaConf

    from framework.sweep import register_resolvers

    register_resolvers()
    first = OmegaConf.create({"run": "logs/${unique_token:}", "again": "logs/${unique_token:}"})
    second = OmegaConf.create({"run": "logs/${unique_token:}"})
    assert first.run == first.again and first.run != second.run
    hydra_config = (PROJECT_ROOT / "conf" / "hydra" / "default.yaml").read_text()
    assert hydra_config.count("_${unique_token:}") == 2


def test_a_valid_argument_missing_from_the_config_is_explained():
    with pytest.raises(ConfigError, match=r"'trainer.benchmark' is an argument of pytorch_lightning.Trainer but not in the config; add it with \+trainer.benchmark=true"):
        check_command_line(["trainer.benchmark=true"])
    assert check_command_line(["+trainer.benchmark=true"]) == ["+trainer.benchmark=true"]
