"""Distributed training on CPU with 2 processes (gloo): DDP and FSDP2 give one process's numbers,
sharded checkpoints resume and consolidate, and every way of starting the processes works."""

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace

import hydra.utils
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning_fabric.utilities.rank_zero import rank_zero_only as fabric_rank_zero_only
from lightning_utilities.core.rank_zero import rank_zero_only as lightning_rank_zero_only
from omegaconf import OmegaConf, open_dict
from torch.distributed.checkpoint import FileSystemReader
from torch.utils.data import DistributedSampler

from framework import process_env
from framework.checkpointing import load_checkpoint_file, read_checkpoint_summary
from framework.cli.consolidate import main
from framework.cli.precheck import check_command_line
from framework.data.datamodule import LanguageModelingDataModule, RandomWindows, SequentialWindows, UnpaddedDistributedSampler
from framework.errors import CheckpointMismatchError, ConfigError
from framework.models import GPT, LSTMLanguageModel
from framework.run.evaluation import evaluate
from framework.run.sweep import single_run_command
from framework.run.training import train
from framework.strategy.fsdp import FSDP2Strategy, sharding_units
from framework.strategy.launch import external_launcher, launch_rank, lightning_starts_processes


def test_training_samples_are_disjoint_across_ranks_and_cover_every_index():
    windows = RandomWindows(np.arange(1000, dtype=np.uint16), block_size=8, num_samples=48, seed=0)
    per_rank = [list(DistributedSampler(windows, num_replicas=2, rank=rank, shuffle=False)) for rank in (0, 1)]
    assert set(per_rank[0]).isdisjoint(per_rank[1]) and sorted(per_rank[0] + per_rank[1]) == list(range(48))


def test_validation_windows_are_split_without_padding():
    windows = SequentialWindows(np.arange(1 + 8 * 11, dtype=np.uint16), block_size=8)  # 11 windows
    per_rank = [list(UnpaddedDistributedSampler(windows, num_replicas=2, rank=rank)) for rank in (0, 1)]
    assert sorted(per_rank[0] + per_rank[1]) == list(range(11))  # each window once: no duplicate for rank 1
    assert [len(UnpaddedDistributedSampler(windows, 2, rank)) for rank in (0, 1)] == [6, 5]


TORCHRUN = ("torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "framework.train")


@pytest.fixture(scope="session")
def run(run_module):
    """``run(*overrides, run_dir, launcher=("framework.train",))``: the training command in a
    subprocess, started beside ``run_dir``; it must succeed."""

    def train_command(*overrides, run_dir, launcher=("framework.train",)):
        result = run_module(*launcher, *overrides, f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return train_command


@pytest.fixture(scope="session")
def run_in_process(compose_config):
    """``run_in_process(*overrides, run_dir)``: the same run as ``run`` with one process, inside
    the test process (no start-up cost)."""

    def train_here(*overrides, run_dir):
        cfg = compose_config(overrides)
        with open_dict(cfg):
            cfg.paths.root_dir = cfg.paths.log_dir = str(run_dir.parent)
            cfg.paths.run_dir = str(run_dir)
        train(cfg)

    return train_here


def recipe(corpus, cache_dir):
    return [
        "data=text_files",
        f"data.path={corpus}",
        "tokenizer=char",
        "data.block_size=32",
        "model.n_layer=2",
        "model.n_head=2",
        "model.n_embd=32",
        "model.dropout=0.0",
        "trainer.deterministic=true",
        "trainer.accelerator=cpu",
        "trainer.limit_val_batches=1.0",
        "callbacks.progress=null",
        "sample.max_new_tokens=5",
        "logger=csv",
        f"paths.cache_dir={cache_dir}",
    ]


# A constant learning rate after warmup, so a run stopped at step 10 and continued with
# max_steps=20 takes the same steps as a 20-step run.
CURVE = ["trainer.val_check_interval=5", "scheduler=constant", "scheduler.warmup_steps=5"]
# A config value that resolves differently in every process unless rank 0's config is shared.
PER_PROCESS_NAME = 'callbacks.model_checkpoint.filename="best-${hydra:job.name}-step{step:06d}"'


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare_path):
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(shakespeare_path.read_text()[:100_000])
    return path


def evaluations(run_dir: Path) -> list[tuple[int, str, str]]:
    with (run_dir / "metrics.csv").open() as file:
        return [(int(row["step"]), row["val/loss"], row["val/ppl"]) for row in csv.DictReader(file) if row.get("val/loss")]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint_file(checkpoint)["state_dict"]


def largest_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max((first[name] - second[name]).abs().max().item() for name in first)


@pytest.fixture(scope="module")
def one_process_run(corpus, tmp_path_factory, run_in_process):
    root = tmp_path_factory.mktemp("one")
    run_in_process(*recipe(corpus, root / "cache"), *CURVE, "trainer.max_steps=20", "data.batch_size=12", run_dir=root / "run")
    return root / "run"


def two_process_overrides(corpus, cache_dir, strategy):
    return [*recipe(corpus, cache_dir), *CURVE, "data.batch_size=6", f"strategy={strategy}", "trainer.devices=2", PER_PROCESS_NAME]


@pytest.fixture(scope="module")
def two_process_run(corpus, tmp_path_factory, run):
    """``two_process_run(strategy)``: the run directory of 20 steps on 2 processes with batch 6 (made once)."""
    runs = {}

    def get(strategy: str) -> Path:
        if strategy not in runs:
            root = tmp_path_factory.mktemp(strategy)
            run(*two_process_overrides(corpus, root / "cache", strategy), "trainer.max_steps=20", run_dir=root / strategy)
            runs[strategy] = root / strategy
        return runs[strategy]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_with_half_batches_follow_one_process(one_process_run, two_process_run, tmp_path, strategy):
    run_dir = two_process_run(strategy)

    one, two = evaluations(one_process_run), evaluations(run_dir)
    assert [step for step, _, _ in one] == [step for step, _, _ in two] == [5, 10, 15, 20]
    for (_, loss_one, ppl_one), (_, loss_two, ppl_two) in zip(one, two, strict=True):
        assert abs(float(loss_one) - float(loss_two)) < 1e-5 and abs(float(ppl_one) - float(ppl_two)) / float(ppl_one) < 1e-5
    last = run_dir / "checkpoints" / "last.ckpt"
    if strategy == "fsdp":  # a directory of shards, one per process
        assert sorted(path.name for path in last.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]
        main(["--output", str(tmp_path / "consolidated.ckpt"), str(last)])
        last = tmp_path / "consolidated.ckpt"
    assert largest_difference(weights(one_process_run / "checkpoints" / "last.ckpt"), weights(last)) < 1e-5

    # one run directory, written by rank 0 only; every process ran rank 0's resolved config
    assert sorted(path.name for path in run_dir.parent.iterdir()) == ["cache", strategy]
    assert sorted(path.name for path in run_dir.iterdir()) == [
        ".hydra",
        "checkpoints",
        "hparams.yaml",
        "metrics.csv",
        "run.json",
        "samples.txt",
        "tokenizer.json",
        "train.log",
    ]
    processes = json.loads((run_dir / "run.json").read_text())["processes"]
    assert [process["rank"] for process in processes] == [0, 1]
    assert processes[0]["config_sha256"] == processes[1]["config_sha256"]
    best = str(run_dir / "checkpoints" / "best-train-step000020.ckpt")
    assert processes[0]["best_checkpoint"] == processes[1]["best_checkpoint"] == best


@pytest.mark.slow
def test_fsdp_resumes_from_sharded_checkpoint_and_consolidates(corpus, two_process_run, tmp_path, run):
    uninterrupted = two_process_run("fsdp")
    common = two_process_overrides(corpus, tmp_path / "cache", "fsdp")
    run(*common, "trainer.max_steps=10", run_dir=tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["final"]["step"] == 10
    resumed = run(*common, "trainer.max_steps=20", run_dir=tmp_path / "resumed")
    assert "Resuming from" in resumed.stdout + resumed.stderr

    assert evaluations(tmp_path / "resumed") == evaluations(uninterrupted)  # identical strings
    consolidated = {}
    for name, run_dir in (("uninterrupted", uninterrupted), ("resumed", tmp_path / "resumed")):
        main([str(run_dir / "checkpoints" / "last.ckpt")])
        consolidated[name] = run_dir / "checkpoints" / "last-consolidated.ckpt"
    first, second = (load_checkpoint_file(path) for path in consolidated.values())
    assert all(torch.equal(first["state_dict"][key], second["state_dict"][key]) for key in first["state_dict"])
    assert first["global_step"] == 20 and first["run_config"]["trainer"]["strategy"]["_target_"] == "framework.strategy.FSDP2Strategy"

    # Evaluation reads the consolidated file on one process and gets the sharded run's final loss.
    record = evaluate(uninterrupted, checkpoint="last")
    assert record["checkpoint"] == str(consolidated["uninterrupted"]) and record["step"] == 20
    assert record["metrics"]["val/loss"] == pytest.approx(float(evaluations(uninterrupted)[-1][1]), abs=1e-6)


@pytest.mark.slow
def test_fsdp_shards_the_lstm_layers(corpus, tmp_path, run):
    gpt_free = [item for item in recipe(corpus, tmp_path / "cache") if not item.startswith("model.")]
    overrides = [*gpt_free, "model=lstm", "model.n_embd=32", "model.hidden_size=32", "model.n_layer=2"]
    run(*overrides, "trainer.max_steps=3", "scheduler.warmup_steps=1", "strategy=fsdp", "trainer.devices=2", run_dir=tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = read_checkpoint_summary(last)
    assert checkpoint["global_step"] == 3
    # each LSTM tensor is stored as two chunks, one per process: sharded, not replicated
    index = FileSystemReader(str(last)).read_metadata().state_dict_metadata
    assert {name: len(entry.chunks) for name, entry in index.items() if name.startswith("state_dict.model.lstm.")} == {
        f"state_dict.model.lstm.{kind}_l{layer}": 2 for layer in (0, 1) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    assert {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items() if "lstm" in name} == {
        f"model.lstm.{kind}_l{layer}": shape
        for layer in (0, 1)
        for kind, shape in (("weight_ih", (128, 32)), ("weight_hh", (128, 32)), ("bias_ih", (128,)), ("bias_hh", (128,)))
    }


@pytest.mark.slow
def test_torchrun_started_processes_are_detected_and_share_one_run_directory(corpus, one_process_run, tmp_path, run):
    overrides = [
        *recipe(corpus, tmp_path / "cache"),
        *CURVE,
        "trainer.max_steps=20",
        "data.batch_size=6",
        "strategy=ddp",
        "trainer.devices=2",
    ]
    run(*overrides, run_dir=tmp_path / "run", launcher=TORCHRUN)
    assert [(step, round(float(loss), 5)) for step, loss, _ in evaluations(tmp_path / "run")] == [
        (step, round(float(loss), 5)) for step, loss, _ in evaluations(one_process_run)
    ]
    assert [process["rank"] for process in json.loads((tmp_path / "run" / "run.json").read_text())["processes"]] == [0, 1]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "run"]


@pytest.mark.slow
def test_multirun_of_ddp_jobs_gives_one_directory_per_job_and_leaves_no_process(corpus, tmp_path, run_module):
    sweep_dir = tmp_path / "sweep"
    result = run_module(
        "framework.train",
        "-m",
        "optimizer.lr=1e-3,3e-3",
        "strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.max_steps=3",
        *recipe(corpus, tmp_path / "cache"),
        "scheduler.warmup_steps=1",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    jobs = sorted(path for path in sweep_dir.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0_optimizer.lr=0.001", "1_optimizer.lr=0.003"]
    for job, lr in zip(jobs, (1e-3, 3e-3)):
        record = json.loads((job / "run.json").read_text())
        assert (record["config"]["optimizer"]["lr"], record["status"], record["final"]["step"]) == (lr, "finished", 3)
        assert [process["rank"] for process in record["processes"]] == [0, 1]
        assert sorted(path.name for path in job.iterdir() if path.is_dir()) == [".hydra", "checkpoints"]  # nothing nested
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "sweep"]
    leftover = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(sweep_dir).encode() in _command_line(pid)]
    assert leftover == []


def _command_line(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # the process ended while we looked
        return b""


@pytest.mark.slow
def test_gradient_accumulation_and_processes_give_the_same_step(corpus, tmp_path, run, run_in_process):
    # SGD without momentum: the step is the gradient itself, so any difference in it shows.
    common = [
        *recipe(corpus, tmp_path / "cache"),
        "trainer.max_steps=1",
        "scheduler=constant",
        "trainer.limit_val_batches=1",
        "optimizer=sgd",
        "optimizer.momentum=0",
        "optimizer.lr=1.0",
        "trainer.gradient_clip_val=0",
    ]
    run_in_process(*common, "data.batch_size=8", run_dir=tmp_path / "batch8")
    run_in_process(*common, "data.batch_size=2", "trainer.accumulate_grad_batches=4", run_dir=tmp_path / "accumulated")
    run(*common, "data.batch_size=1", "trainer.accumulate_grad_batches=4", "strategy=ddp", "trainer.devices=2", run_dir=tmp_path / "ddp")
    reference = weights(tmp_path / "batch8" / "checkpoints" / "last.ckpt")
    for other in ("accumulated", "ddp"):
        assert largest_difference(reference, weights(tmp_path / other / "checkpoints" / "last.ckpt")) < 1e-6, other


def test_each_process_and_batch_gets_its_own_dropout_seed():
    from framework.callbacks.rng_state import batch_seed

    seeds = {(rank, batch): batch_seed(1337, rank, batch) for rank in (0, 1) for batch in range(50)}
    assert len(set(seeds.values())) == 100  # differ across processes and batches
    assert batch_seed(1337, 1, 7) == seeds[(1, 7)] and batch_seed(1338, 1, 7) != seeds[(1, 7)]
    assert all(0 <= seed < 2**63 for seed in seeds.values())


def test_training_samples_are_disjoint_across_ranks_and_dataloader_workers():
    tokens = np.arange(5000, dtype=np.uint16)  # every window is distinct
    module = LanguageModelingDataModule(tokens, tokens[:100], block_size=8, batch_size=3, num_train_samples=48, seed=0, num_workers=2)
    seen = []
    for rank in (0, 1):
        module.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        seen += [tuple(window.tolist()) for inputs, _ in module.train_dataloader() for window in inputs]
    every_sample = sorted(tuple(module.train_set[index][0].tolist()) for index in range(48))
    assert len(seen) == 48 and sorted(seen) == every_sample  # each sample once, across ranks and workers


TORCHRUN_RANK_5_OF_8 = {
    "TORCHELASTIC_RUN_ID": "job",
    "RANK": "5",
    "LOCAL_RANK": "1",
    "GROUP_RANK": "1",
    "WORLD_SIZE": "8",
    "LOCAL_WORLD_SIZE": "4",
    "MASTER_ADDR": "node1",
    "MASTER_PORT": "29500",
}
SLURM_RANK_5_OF_8 = {
    "SLURM_NTASKS": "8",
    "SLURM_NTASKS_PER_NODE": "4",
    "SLURM_PROCID": "5",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_ID": "42",
    "SLURM_NODELIST": "node[1-2]",
}


@pytest.mark.parametrize(
    "environment, launcher, cluster",
    [(TORCHRUN_RANK_5_OF_8, "torchrun", "TorchElasticEnvironment"), (SLURM_RANK_5_OF_8, "slurm", "SLURMEnvironment")],
)
def test_externally_started_multi_node_processes_are_detected(monkeypatch, make_config, environment, launcher, cluster):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert external_launcher() == launcher and launch_rank() == 5
    cfg = make_config(["strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=4", "trainer.num_nodes=2", "logger=none"])
    assert not lightning_starts_processes(cfg.trainer)  # the launcher started them
    for rank_zero_only in (fabric_rank_zero_only, lightning_rank_zero_only):  # the Trainer sets them process-wide
        monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    assert type(trainer.strategy.cluster_environment).__name__ == cluster
    assert (trainer.world_size, trainer.global_rank, trainer.node_rank, trainer.local_rank) == (8, 5, 1, 1)
    with pytest.raises(ConfigError, match=f"one of several started by {launcher}.*hydra.run.dir=<dir>"):
        check_command_line("train", ["strategy=ddp", "trainer.devices=4", "trainer.num_nodes=2"])


def test_processes_lightning_starts_take_rank_zeros_resolved_config(monkeypatch, make_config):
    for name in ("RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(process_env.RANK_ZERO_CONFIG, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    rank_zero = make_config(["strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"])
    assert lightning_starts_processes(rank_zero.trainer) and process_env.rank_zero_config() is None
    process_env.share_rank_zero_config(OmegaConf.to_container(rank_zero, resolve=True))
    monkeypatch.setenv("LOCAL_RANK", "1")  # as in the process Lightning starts for the second device
    assert launch_rank() == 1 and process_env.rank_zero_config() == OmegaConf.to_container(rank_zero, resolve=True)


def test_lightning_fsdp1_strategy_is_refused_on_cpu_before_any_work(checked_config):
    with pytest.raises(ConfigError, match=r"strategy=fsdp1 \(Lightning's FSDPStrategy\) runs on CUDA GPUs only.*strategy=fsdp"):
        checked_config(["strategy=fsdp1", "trainer.accelerator=cpu", "trainer.devices=2"])


def test_consolidation_refuses_what_is_not_a_sharded_checkpoint_and_never_overwrites(tmp_path, capsys):
    single_file = tmp_path / "last.ckpt"
    single_file.write_bytes(b"not sharded")
    with pytest.raises(SystemExit) as exit_info:
        main([str(single_file)])
    assert exit_info.value.code == 2 and "is not a sharded checkpoint" in capsys.readouterr().err

    sharded = tmp_path / "shards.ckpt"
    sharded.mkdir()
    (sharded / "meta.pt").write_bytes(b"")
    (sharded / ".metadata").write_bytes(b"")
    existing = tmp_path / "shards-consolidated.ckpt"
    existing.write_bytes(b"keep me")
    with pytest.raises(SystemExit) as exit_info:
        main([str(sharded)])
    assert exit_info.value.code == 2 and "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep me"


def test_models_name_their_fsdp_units():
    gpt = GPT(vocab_size=10, block_size=8, n_layer=3, n_head=2, n_embd=8)
    assert sharding_units(gpt) == list(gpt.transformer.h) and len(sharding_units(gpt)) == 3
    lstm = LSTMLanguageModel(vocab_size=10, n_embd=8, hidden_size=8, n_layer=2)
    assert sharding_units(lstm) == [lstm.lstm]


def test_a_sweep_job_runs_alone_even_under_an_optuna_search(tmp_path, project_root):
    command = single_run_command(["hparams_search=optuna", "optimizer.lr=0.003"], tmp_path / 'job "0"')
    overrides = command[command.index("framework.train") + 1 :]
    with initialize_config_dir(config_dir=str(project_root / "conf"), version_base="1.3"):
        hydra_config = compose(config_name="train", overrides=overrides, return_hydra_config=True).hydra
    assert str(hydra_config.mode) == "RunMode.RUN"  # the search config alone would make it a sweep
    assert hydra_config.run.dir == str(tmp_path / 'job "0"') and hydra_config.output_subdir is None


def test_an_interrupted_first_sharded_save_is_named_not_loaded(tmp_path):
    incomplete = tmp_path / "last.ckpt"
    incomplete.mkdir()
    (incomplete / "__0_0.distcp").write_bytes(b"partial")
    with pytest.raises(CheckpointMismatchError, match=r"last.ckpt is a directory but not a complete sharded checkpoint"):
        read_checkpoint_summary(incomplete)


def test_consolidation_into_a_missing_folder_is_refused(tmp_path, capsys):
    sharded = tmp_path / "shards.ckpt"
    sharded.mkdir()
    (sharded / "meta.pt").write_bytes(b"")
    (sharded / ".metadata").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        main(["--output", str(tmp_path / "no" / "such" / "out.ckpt"), str(sharded)])
    assert exit_info.value.code == 2 and "folder of" in capsys.readouterr().err


def test_fsdp_mixed_precision_setting_is_checked():
    with pytest.raises(ConfigError, match=r"trainer.strategy.mixed_precision='fp8' is not one of auto, bf16, fp16, none"):
        FSDP2Strategy(mixed_precision="fp8")


def test_only_rank_zero_creates_the_wandb_run_id(tmp_path, monkeypatch):
    from framework.logger import wandb_run_id

    monkeypatch.setattr(fabric_rank_zero_only, "rank", 1)
    assert wandb_run_id(tmp_path) == "unused-on-this-rank" and not (tmp_path / "wandb" / "run_id").exists()
    monkeypatch.setattr(fabric_rank_zero_only, "rank", 0)
    run_id = wandb_run_id(tmp_path)
    assert (tmp_path / "wandb" / "run_id").read_text() == run_id + "\n"
    monkeypatch.setattr(fabric_rank_zero_only, "rank", 1)
    assert wandb_run_id(tmp_path) == run_id  # other ranks read rank 0's id


@pytest.mark.slow
def test_a_mixture_on_two_processes_follows_one_process_for_each_source(shakespeare_path, prepare_config, run, run_in_process, tmp_path):
    """Under DDP and FSDP alike: same validation losses per source, same weights."""
    from framework.prepare.pipeline import prepare

    text = shakespeare_path.read_text()
    (tmp_path / "sources").mkdir()
    for name, part in (("early", text[:60_000]), ("late", text[-60_000:])):
        (tmp_path / "sources" / f"{name}.txt").write_text(part)
    parent = prepare(
        prepare_config(
            [
                f"+input.sources.early.path={tmp_path / 'sources' / 'early.txt'}",
                f"+input.sources.late.path={tmp_path / 'sources' / 'late.txt'}",
                "+input.sources.early.txt_documents=paragraphs",
                "+input.sources.late.txt_documents=paragraphs",
                "tokenizer=char",
                "executor.tasks=1",
                "executor.workers=1",
                "output.val_fraction=0.1",
            ],
            tmp_path,
        )
    ).folder
    mixture = [
        "data=prepared",
        f"data.mixture=[{{path:{parent / 'early'},weight:2}},{{path:{parent / 'late'},weight:1}}]",
        *[item for item in recipe(Path("unused"), tmp_path / "cache") if not item.startswith(("data=", "data.path", "tokenizer="))],
        *CURVE,
        "trainer.max_steps=10",
    ]
    run_in_process(*mixture, "data.batch_size=12", run_dir=tmp_path / "one")
    for strategy in ("ddp", "fsdp"):
        run(*mixture, "data.batch_size=6", f"strategy={strategy}", "trainer.devices=2", run_dir=tmp_path / strategy)
    rows = {}
    for name in ("one", "ddp", "fsdp"):
        with (tmp_path / name / "metrics.csv").open() as file:
            rows[name] = [row for row in csv.DictReader(file) if row.get("val/loss")]
    for strategy in ("ddp", "fsdp"):
        assert [row["step"] for row in rows["one"]] == [row["step"] for row in rows[strategy]] == ["5", "10"]
        for one, two in zip(rows["one"], rows[strategy]):
            for metric in ("val/loss", "val/early/loss", "val/late/loss"):
                assert abs(float(one[metric]) - float(two[metric])) < 1e-5, (strategy, metric)
    main(["--output", str(tmp_path / "fsdp.ckpt"), str(tmp_path / "fsdp" / "checkpoints" / "last.ckpt")])
    single = weights(tmp_path / "one" / "checkpoints" / "last.ckpt")
    assert largest_difference(single, weights(tmp_path / "ddp" / "checkpoints" / "last.ckpt")) < 1e-5
    assert largest_difference(single, weights(tmp_path / "fsdp.ckpt")) < 1e-5


@pytest.mark.slow
def test_muon_and_downstream_evaluation_on_two_processes_follow_one_process(
    corpus, shakespeare_path, tmp_path, run, run_in_process, harness_settings, harness_cache
):
    """Muon orthogonalises the all-reduced gradient, so DDP takes one process's steps up to float
    rounding, which Muon's bfloat16 Newton-Schulz iterations amplify (their slope at zero is
    3.4445, ~500x over 5 iterations, for the gradient's small singular directions): after 10 steps
    the Muon-trained matrices agree within 5 % (Frobenius norm of the difference over the
    weight's), every other tensor within 1e-4, the validation loss within 1e-4; another seed
    differs by more than 50 %. The downstream task is scored by the first process alone: the
    figure it logs under DDP is the one-process evaluation of the same checkpoint."""
    common = [*recipe(corpus, tmp_path / "cache"), *CURVE, "optimizer=muon", "trainer.max_steps=10"]
    downstream = ["callbacks.downstream.tasks=[shakespeare_continuation]", "callbacks.downstream.limit=60"]
    downstream += [
        "callbacks.downstream.every_n_steps=5",
        f"callbacks.downstream.shakespeare={shakespeare_path}",
        f"callbacks.downstream.cache_dir={harness_cache}",
    ]
    run_in_process(*common, "data.batch_size=12", run_dir=tmp_path / "one")
    run_in_process(*common, "data.batch_size=12", "seed=7", run_dir=tmp_path / "other_seed")
    run(*common, *downstream, "data.batch_size=6", "strategy=ddp", "trainer.devices=2", run_dir=tmp_path / "two")
    one, two = evaluations(tmp_path / "one"), evaluations(tmp_path / "two")
    assert [step for step, _, _ in one] == [step for step, _, _ in two] == [5, 10]
    assert max(abs(float(a[1]) - float(b[1])) for a, b in zip(one, two)) < 1e-4
    final = {name: weights(tmp_path / name / "checkpoints" / "last.ckpt") for name in ("one", "two", "other_seed")}

    def relative(other: str) -> dict[str, float]:
        return {name: ((final[other][name] - value).norm() / value.norm()).item() for name, value in final["one"].items()}

    muon_matrices = {name for name in final["one"] if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))}
    assert len(muon_matrices) == 8 and max(relative("two")[name] for name in muon_matrices) < 0.05
    assert max((final["two"][name] - final["one"][name]).abs().max().item() for name in final["one"] if name not in muon_matrices) < 1e-4
    assert min(relative("other_seed")[name] for name in muon_matrices) > 0.5

    with (tmp_path / "two" / "metrics.csv").open() as file:
        logged = {
            int(row["step"]): float(row["eval/shakespeare_continuation/acc"])
            for row in csv.DictReader(file)
            if row.get("eval/shakespeare_continuation/acc")
        }
    assert list(logged) == [5, 10]
    record = evaluate(tmp_path / "two", checkpoint="last", harness=harness_settings(["shakespeare_continuation"], limit=60))
    assert (
        record["harness"]["shakespeare_continuation"]["acc"] == logged[10] and record["harness"]["shakespeare_continuation"]["items"] == 60
    )
