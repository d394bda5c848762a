"""The config check before any work (framework.run.schema, framework.cli.precheck): each bad
value is refused with the error type and the key the user typed."""

import pytest
from omegaconf import OmegaConf

from framework.cli.precheck import check_command_line, user_errors_exit
from framework.errors import ConfigError, DataError, MissingDependencyError, MissingInputError
from framework.run.schema import validate_config


@pytest.mark.parametrize(
    "override, named",
    [
        ("trainer.max_step=3", "'trainer.max_step'. Did you mean 'trainer.max_steps'"),
        ("+trainer.max_step=3", "'trainer.max_step'. Did you mean 'trainer.max_steps'"),
        ("model.n_layers=2", "'model.n_layers'. Did you mean 'model.n_layer'"),
        ("max_steps=100", "'max_steps'. Did you mean 'scheduler.max_steps' or 'trainer.max_steps'?"),
        ("n_layer=3", "'n_layer'. Did you mean 'model.n_layer'?"),
        ("+model.n_layers=2", "'model.n_layers'. Did you mean 'model.n_layer'"),
        ("optimizer.learning_rate=0.1", "'optimizer.learning_rate'"),
        ("modle.n_layer=2", "'modle'. Did you mean 'model'?"),
        ("model=gtp", "model option 'gtp'. Did you mean model=gpt?"),
        ("experiment=shakespeare", "Did you mean experiment=shakespeare_char?"),
        ("model.n_layer=four", "model.n_layer='four'"),
        ("trainer.precision=bf17", "trainer.precision='bf17'"),
        ("optimizer.betas=0.9", "optimizer.betas=0.9"),
        ("model.n_head=3", "model.n_head=3"),
        ("scheduler.warmup_steps=-1", "scheduler.warmup_steps=-1"),
        ("data.val_fraction=1.0", "data.val_fraction=1.0"),
        ("model.block_size=64", "model.block_size=64"),
        ("model.vocab_size=1000", "model.vocab_size=1000"),
        ("trainer.max_steps=0", "trainer.max_steps=0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0"),
        ("optimizer.lr=-0.001", "optimizer.lr=-0.001"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("data.block_size=0", "data.block_size=0"),
        ("sample.top_k=0", "sample.top_k=0"),
        ("logger.wandb.mode=offlien", "logger.wandb.mode='offlien'"),
        ("model.compile=fast", "model.compile='fast'"),
        ("model.compiled=true", "'model.compiled'. Did you mean 'model.compile'?"),
        ("+task.compile_model=true", "task.compile_model"),
        ("trainer.precision=16-mixed", "optimizer.fused=true"),
        ("trainer.max_steps=1e3", "trainer.max_steps=1000.0"),  # not scheduler.max_steps, which follows it
        ("data.block_size='${oc.decode:2}'", "data.block_size"),  # a value that does not resolve
        ("callbacks.nonfinite_loss.policy=halt", "callbacks.nonfinite_loss.policy='halt'"),
        ("threads=0", "threads=0 must be null (all usable cores) or at least 1"),
        ("optimizer.lr=fast", "optimizer.lr='fast' has the wrong type: expected a number"),
        ("threads=two", "threads='two'"),
        ("callbacks.progress.log_every=5", "'callbacks.progress.log_every'. Did you mean 'callbacks.progress.log_every_s'?"),
    ],
)
def test_bad_overrides_are_refused_before_any_work_naming_the_key(checked_config, override, named):
    with pytest.raises(ConfigError) as refused:
        checked_config([override])
    assert named in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_a_value_that_follows_another_key_is_reported_under_the_key_the_user_typed(checked_config):
    with pytest.raises(ConfigError) as refused:
        checked_config(["trainer.max_steps=1e3"])
    assert str(refused.value).startswith("trainer.max_steps=1000.0 has the wrong type") and "scheduler" not in str(refused.value)


def test_compiling_on_cpu_without_a_cpp_compiler_is_refused_before_any_work(checked_config, monkeypatch):
    monkeypatch.setattr("framework.run.schema.shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ConfigError, match=r"model.compile=true on CPU needs a C\+\+ compiler .* g\+\+"):
        checked_config(["model.compile=true", "trainer.accelerator=cpu"])
    checked_config(["model.compile=false", "trainer.accelerator=cpu"])


def test_a_key_of_another_group_option_is_named_not_a_required_key_before_it():
    # data.path is ??? (required) in data=text_files; the fault is model.n_head, which LSTMs lack
    with pytest.raises(ConfigError, match=r"^Unknown config key 'model.n_head'. Did you mean 'model.n_embd'\?"):
        check_command_line("train", ["data=text_files", "data.path=corpus.txt", "model.n_head=2", "model=lstm"])


def test_sweeps_are_checked_by_their_first_value():
    check_command_line("train", ["-m", "model=gpt,lstm", "optimizer.lr=1e-3,3e-4"])
    with pytest.raises(ConfigError, match="Did you mean 'optimizer.lr'"):
        check_command_line("train", ["-m", "optimizer.lrr=1e-3,3e-4"])


def test_the_config_is_checked_before_data_is_read(make_config):
    cfg = make_config(["data=text_files", "data.path=/does/not/exist.txt", "model.n_head=5"])
    with pytest.raises(ConfigError, match="model.n_head=5"):
        validate_config(cfg)


def test_user_errors_exit_with_status_2_and_one_paragraph(capsys):
    with pytest.raises(SystemExit) as exit_info, user_errors_exit():
        raise DataError("The val split has 3 tokens.")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "Error: The val split has 3 tokens.\n"
    with pytest.raises(SystemExit), user_errors_exit():
        raise MissingInputError("Corpus file x.txt does not exist; check data.path.")


def test_an_objective_that_is_never_logged_fails_fast(checked_config):
    with pytest.raises(ConfigError, match=r"optimized_metric=val/acc is never logged by framework.tasks.LanguageModelingTask"):
        checked_config(["optimized_metric=val/acc"])


def test_run_and_sweep_directories_get_a_token_that_is_stable_within_a_config(project_root):
    first = OmegaConf.create({"run": "logs/${unique_token:}", "again": "logs/${unique_token:}"})
    second = OmegaConf.create({"run": "logs/${unique_token:}"})
    assert first.run == first.again and first.run != second.run
    hydra_config = (project_root / "conf" / "hydra" / "default.yaml").read_text()
    assert hydra_config.count("_${unique_token:}") == 2


def test_a_valid_argument_missing_from_the_config_is_explained(checked_config):
    with pytest.raises(
        ConfigError,
        match=r"'trainer.benchmark' is an argument of pytorch_lightning.Trainer but not in the config; add it with \+trainer.benchmark=true",
    ):
        check_command_line("train", ["trainer.benchmark=true"])
    assert checked_config(["+trainer.benchmark=true"]).trainer.benchmark is True


@pytest.mark.parametrize("choice", ["hydra/sweeper=optuna", "hydra/launcher=joblib"])
def test_a_missing_plugin_names_the_extra_to_install(monkeypatch, choice):
    from hydra.errors import MissingConfigException

    from framework.cli import precheck

    group, option = choice.split("=")

    def missing(config_name, overrides):
        raise MissingConfigException(f"In '{config_name}': Could not find '{group}/{option}'", missing_cfg_file=option)

    monkeypatch.setattr(precheck, "compose_job_config", missing)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lm-framework\[sweep\]'"):
        check_command_line("train", [choice])


def test_a_launcher_whose_package_is_not_installed_names_the_extra(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "submitit" else find_spec(name, *rest))
    with pytest.raises(MissingDependencyError, match=r"needs hydra_submitit_launcher and submitit; install the sweep extra"):
        check_command_line("train", ["-m", "hydra/launcher=submitit_slurm"])


def test_skipping_bad_steps_is_refused_with_several_processes(checked_config):
    with pytest.raises(ConfigError, match=r"callbacks.nonfinite_loss.policy=skip needs one process, but the trainer settings ask for 2"):
        checked_config(["callbacks.nonfinite_loss.policy=skip", "strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"])
    checked_config(["callbacks.nonfinite_loss.policy=skip"])


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["experiment=seed_lstm_sentiment", "data.path=x"], "not task=classification"),
        (["callbacks.downstream.every_n_steps=0"], "callbacks.downstream.every_n_steps=0"),
        (["strategy=fsdp", "trainer.accelerator=cpu"], "which FSDP shards across all of them"),
        (["callbacks.downstream.limit=0"], "callbacks.downstream.limit=0"),
        (["callbacks.downstream.shakespeare=/nonexistent/input.txt"], "callbacks.downstream.shakespeare=<path to input.txt>"),
    ],
)
def test_downstream_settings_that_cannot_run_are_refused_before_any_work(checked_config, overrides, named):
    with pytest.raises((ConfigError, MissingInputError)) as refused:
        checked_config(["callbacks.downstream.tasks=[shipped]", *overrides])
    assert named in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_a_misspelt_key_of_an_own_option_on_the_search_path_is_named(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tiny.yaml").write_text("defaults:\n  - gpt\n  - _self_\nn_layer: 1\n")
    with pytest.raises(ConfigError, match=r"Unknown config key 'model.n_layr'. Did you mean 'model.n_layer'\?"):
        check_command_line("train", [f"hydra.searchpath=[file://{tmp_path}]", "model=tiny", "model.n_layr=2"])


def test_a_misspelt_option_inside_a_list_group_gets_the_nearest_option():
    with pytest.raises(ConfigError, match=r"There is no prepare/filters option 'clen'. Did you mean prepare/filters=clean\?"):
        check_command_line("prepare", ["prepare/filters=[clen]", "input.path=x"])
