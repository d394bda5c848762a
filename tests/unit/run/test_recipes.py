from pathlib import Path
from types import SimpleNamespace

import hydra.utils
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from framework.data import Document, prepare_corpus
from framework.errors import UserInputError
from framework.logger import RunCSVLogger, build_loggers
from framework.run.recipes import build_corpus, build_model, build_task
from framework.run.training import build_trainer
from framework.tokenizer import train_bpe_tokenizer, train_char_tokenizer

TEXT = "some training text, some more training text. " * 40


def tiny_corpus(cfg):
    """A real token cache entry of a short text, built with ``cfg``'s tokenizer."""
    tokenizer_config = OmegaConf.to_container(cfg.tokenizer)
    return prepare_corpus([Document("t", TEXT)], [], 0.1, hydra.utils.instantiate(cfg.tokenizer), tokenizer_config, cfg.paths.cache_dir)


def trainer_for(cfg, corpus):
    """The Trainer a run of ``cfg`` builds, with a recipe that holds ``corpus``'s tokenizer."""
    recipe = SimpleNamespace(tokenizer=corpus.tokenizer, tokenizer_sha256=corpus.meta["tokenizer_sha256"], checkpoint_metadata=dict)
    return build_trainer(cfg, Path(cfg.paths.run_dir), recipe)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
@pytest.mark.parametrize("logger", ["wandb", "csv", "none"])
def test_every_combination_composes_and_instantiates(make_config, model, tokenizer, logger):
    cfg = make_config(
        [f"model={model}", f"tokenizer={tokenizer}", f"logger={logger}", "tokenizer.vocab_size=300" if tokenizer == "bpe" else "seed=1"]
    )
    assert type(hydra.utils.instantiate(cfg.data.source)).__name__ == "StdlibSource"
    expected_tokenizer = {"char": train_char_tokenizer, "bpe": train_bpe_tokenizer}[tokenizer]
    assert hydra.utils.instantiate(cfg.tokenizer).func is expected_tokenizer
    corpus = tiny_corpus(cfg)
    net = build_model(cfg, corpus.vocab_size)
    assert type(net).__name__ == {"gpt": "GPT", "lstm": "LSTMLanguageModel"}[model]
    embedding = net.transformer.wte if model == "gpt" else net.embedding
    assert embedding.weight.shape == (corpus.vocab_size, cfg.model.n_embd)
    task = build_task(cfg, net, corpus.tokenizer)
    trainer = trainer_for(cfg, corpus)
    logger_types = [type(each).__name__ for each in trainer.loggers]
    assert logger_types == {"wandb": ["RunCSVLogger", "WandbLogger"], "csv": ["RunCSVLogger"], "none": ["RunCSVLogger"]}[logger]
    assert trainer.max_steps == cfg.trainer.max_steps == 600
    optimizer = task.configure_optimizers()["optimizer"]
    assert type(optimizer).__name__ == "AdamW" and optimizer.param_groups[0]["lr"] == cfg.optimizer.lr / cfg.scheduler.warmup_steps


def test_command_line_overrides_reach_built_objects(make_config):
    cfg = make_config(
        ["model.n_layer=3", "model.n_embd=48", "model.n_head=6", "optimizer.lr=0.0123", "trainer.max_steps=77", "scheduler=constant"]
    )
    corpus = tiny_corpus(cfg)
    net = build_model(cfg, corpus.vocab_size)
    assert len(net.transformer.h) == 3 and net.transformer.wte.weight.shape == (corpus.vocab_size, 48)
    optimizer = build_task(cfg, net, corpus.tokenizer).configure_optimizers()["optimizer"]
    assert [group["lr"] for group in optimizer.param_groups] == [0.0123, 0.0123]
    assert trainer_for(cfg, corpus).max_steps == 77


def test_model_block_size_follows_data_block_size(make_config):
    cfg = make_config(["experiment=shakespeare_char", "data.block_size=32"])
    assert build_model(cfg, 66).block_size == 32


def test_model_vocab_size_smaller_than_tokenizer_is_refused(make_config):
    cfg = make_config(["model.vocab_size=50"])
    with pytest.raises(UserInputError, match=r"model.vocab_size=50 is smaller than the tokenizer's vocabulary of 66 ids"):
        build_model(cfg, 66)


def test_shakespeare_char_experiment_is_nanogpts_recipe(make_config):
    cfg = make_config(["experiment=shakespeare_char"])
    assert (cfg.data.block_size, cfg.data.batch_size, cfg.trainer.max_steps) == (64, 12, 2000)
    assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd, cfg.model.dropout, cfg.model.bias) == (4, 4, 128, 0.0, False)
    assert (cfg.optimizer.lr, list(cfg.optimizer.betas), cfg.optimizer.weight_decay) == (1e-3, [0.9, 0.99], 0.1)
    assert (cfg.scheduler.warmup_steps, cfg.scheduler.min_lr, cfg.trainer.gradient_clip_val) == (100, 1e-4, 1.0)
    assert (cfg.trainer.val_check_interval, cfg.trainer.limit_val_batches) == (250, 20)
    assert build_model(cfg, 65).num_parameters() == 804_096


def test_metrics_csv_is_in_the_run_directory(tmp_path):
    (csv_logger,) = build_loggers(tmp_path, {})
    assert isinstance(csv_logger, RunCSVLogger)
    csv_logger.log_metrics({"val/loss": 1.5}, step=3)
    csv_logger.save()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["step,val/loss", "3,1.5"]


def test_cli_cfg_job_prints_composed_config(run_module, project_root):
    result = run_module("framework.train", "--cfg", "job", "experiment=shakespeare_char", "model.n_layer=7", cwd=project_root)
    assert result.returncode == 0, result.stderr
    assert "n_layer: 7" in result.stdout and "block_size: 64" in result.stdout
    assert "TinyShakespeareSource" in result.stdout


def test_ten_character_corpus_is_refused_before_training(make_config, tmp_path):
    (tmp_path / "tiny.txt").write_text("To be, or ")
    cfg = make_config(["data=text_files", f"data.path={tmp_path / 'tiny.txt'}", "tokenizer=char", "data.block_size=64"])
    with pytest.raises(UserInputError, match=r"The train split has 9 tokens, fewer than block_size \+ 1 = 65"):
        build_corpus(cfg)


def test_validation_split_shorter_than_one_window_is_refused(make_config, tmp_path):
    (tmp_path / "short.txt").write_text("x" * 500)  # 450 train and 50 val characters
    cfg = make_config(["data=text_files", f"data.path={tmp_path / 'short.txt'}", "tokenizer=char", "data.block_size=64"])
    with pytest.raises(UserInputError, match=r"The val split has 50 tokens, fewer than block_size \+ 1 = 65"):
        build_corpus(cfg)


def test_submitit_slurm_launcher_runs_one_task_per_device_on_each_node(project_root):
    import dataclasses

    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    overrides = ["hydra/launcher=submitit_slurm", "trainer.devices=4", "trainer.num_nodes=2", "hydra.launcher.partition=gpu"]
    with initialize_config_dir(config_dir=str(project_root / "conf"), version_base="1.3"):
        launcher = compose(config_name="train", overrides=overrides, return_hydra_config=True).hydra.launcher
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["tasks_per_node"], launcher["gpus_per_node"], launcher["nodes"], launcher["partition"]) == (4, 4, 2, "gpu")
    assert launcher["timeout_min"] == 240
    # ours replaces the plugin's config, so it must carry every key the plugin reads
    assert set(launcher) == {field.name for field in dataclasses.fields(SlurmQueueConf)}


def test_wandb_runs_are_tagged_with_the_experiment(tmp_path, project_root):
    from hydra.core.hydra_config import HydraConfig

    from framework.logger import wandb_logger

    with initialize_config_dir(config_dir=str(project_root / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=shakespeare_char"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        logger = wandb_logger(save_dir=str(tmp_path), project="p", mode="disabled", tags=["baseline"])
    finally:
        HydraConfig.instance().cfg = None
    assert logger._wandb_init["tags"] == ["baseline", "experiment:shakespeare_char"]
    assert logger._wandb_init["group"] is None  # not in a sweep


@pytest.mark.parametrize("experiment, kind", [("shakespeare_char", "lstm"), ("seed_lstm_sentiment", "transformer_classifier")])
def test_a_recipe_with_another_model_trains_that_model_with_the_recipes_data_and_optimization(checked_config, experiment, kind):
    cfg = checked_config([f"experiment={experiment}", f"model={kind}", *(["data.path=x"] if experiment.startswith("seed") else [])])
    model_defaults = OmegaConf.load(Path(__file__).resolve().parents[3] / "conf" / "model" / f"{kind}.yaml")
    assert cfg.model._target_ == model_defaults._target_ and cfg.model.n_embd == model_defaults.n_embd
    recipe = OmegaConf.load(Path(__file__).resolve().parents[3] / "experiments" / f"{experiment}.yaml")
    assert cfg.optimizer.lr == recipe.optimizer.lr and cfg.data.batch_size == recipe.data.batch_size


def test_the_readme_sweep_example_passes_its_checks_and_fits_its_warmup(checked_config):
    from framework.optim import warmup_cosine

    cfg = checked_config(["optimizer.lr=1e-3", "trainer.max_steps=50"])  # the first job of -m optimizer.lr=1e-3,3e-3
    assert (cfg.scheduler.warmup_steps, cfg.scheduler.max_steps) == (50, 50)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = warmup_cosine(optimizer, cfg.scheduler.warmup_steps, cfg.scheduler.max_steps, cfg.scheduler.min_lr)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 5)  # 5 warmup steps: a tenth of 50
    assert schedule.last_epoch == 0


def test_epochs_become_steps_from_the_data(make_config):
    from framework.run.recipes import steps_per_epoch
    from framework.run.training import fit_epochs

    cfg = make_config(["experiment=seed_lstm_sentiment", "data.path=x"])
    assert (cfg.trainer.max_epochs, cfg.trainer.check_val_every_n_epoch) == (10, 1)
    fit_epochs(cfg, SimpleNamespace(samples_per_epoch=lambda: 67_349))  # SST-2's training sentences
    assert (cfg.trainer.max_steps, cfg.trainer.val_check_interval, cfg.trainer.check_val_every_n_epoch) == (21_050, 2_105, None)
    assert cfg.scheduler.max_steps == 21_050  # the schedule follows

    language_model = make_config(["trainer.max_epochs=2", "trainer.accumulate_grad_batches=2", "data.batch_size=8"])
    fit_epochs(language_model, SimpleNamespace(samples_per_epoch=lambda: 1_000))  # 1,000 windows of block_size tokens
    assert language_model.trainer.max_steps == 2 * steps_per_epoch(1_000, language_model, 1) == 2 * 63  # ceil(1000 / 16)
    assert language_model.trainer.val_check_interval == 200  # not given in epochs: unchanged


def test_a_language_model_epoch_is_the_training_tokens_in_windows(make_config):
    from framework.run.recipes import LanguageModelingRecipe

    recipe = LanguageModelingRecipe.__new__(LanguageModelingRecipe)
    recipe.cfg = make_config(["data.block_size=64"])
    recipe.corpus = SimpleNamespace(meta={"tokens": {"train": 1_003_854}})
    assert recipe.samples_per_epoch() == 1_003_854 // 64


def test_a_column_given_by_index_reads_a_headerless_file(checked_config, tmp_path):
    import hydra.utils

    (tmp_path / "train.tsv").write_text("a fine film\t1\na dull one\t0\n")
    cfg = checked_config(
        [
            "task=classification",
            "data=labelled_files",
            f"data.path={tmp_path}",
            "data.train_file=train.tsv",
            "data.val_file=train.tsv",
            "data.format=tsv",
            "data.header=false",
            "data.text_column=0",
            "data.label_column=1",
            "model=lstm_classifier",
            "tokenizer=word",
        ]
    )
    assert hydra.utils.instantiate(cfg.data).read("train") == (["a fine film", "a dull one"], ["1", "0"])
