"""End-to-end training runs on real text (marked slow; CI runs them)."""

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from framework.data import LanguageModelingDataModule
from framework.models import GPT
from framework.run.recipes import build_datamodule, build_model
from framework.run.training import train
from framework.tasks import LanguageModelingTask

pytestmark = pytest.mark.slow


def short_run_overrides(shakespeare_path, recipe):
    return [
        *recipe,
        f"data.path={shakespeare_path}",
        "trainer.max_steps=150",
        "trainer.val_check_interval=75",
        "trainer.limit_val_batches=10",
        "scheduler.warmup_steps=20",
        "callbacks.progress=null",
        "+trainer.enable_model_summary=false",
    ]


def test_gpt_learns_shakespeare_tracks_in_wandb_and_reloads(make_config, shakespeare_path, unigram_entropy):
    cfg = make_config(
        [*short_run_overrides(shakespeare_path, ["experiment=shakespeare_char"]), "logger=wandb", "logger.wandb.mode=offline"]
    )
    result = train(cfg)

    # nanoGPT's 0.80M model (804,096 parameters at vocab 65) plus one embedding row for <unk>
    assert result.recipe.corpus.vocab_size == 66 and result.task.model.num_parameters() == 804_096 + 128
    baseline = unigram_entropy(result.recipe.corpus.tokens("train"))
    assert 3.0 < baseline < 3.5
    assert result.metrics["val/loss"] < baseline - 0.3
    assert result.metrics["val/ppl"] == pytest.approx(math.exp(result.metrics["val/loss"]), rel=1e-6)
    assert result.metrics["val/bpc"] == pytest.approx(result.metrics["val/loss"] / math.log(2), rel=1e-6)  # 1 token = 1 char
    assert result.metrics["val/bpb"] == result.metrics["val/bpc"]  # Tiny Shakespeare is ASCII: 1 char = 1 byte

    run_dir = Path(cfg.paths.run_dir)
    assert (run_dir / "tokenizer.json").read_text() == (result.recipe.corpus.directory / "tokenizer.json").read_text()
    assert Path(result.last_checkpoint) == run_dir / "checkpoints" / "last.ckpt"
    assert Path(result.best_checkpoint).name == "best-step000150.ckpt"

    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    inspected = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(wandb_run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    summary = json.loads(inspected.stdout)
    assert summary["config"]["model"]["n_embd"] == 128
    assert summary["config"]["data"]["path"] == str(shakespeare_path)
    # summarised by its minimum and its final value
    assert summary["summary"]["val/loss"] == {
        "min": pytest.approx(result.objective, rel=1e-6),
        "last": pytest.approx(result.metrics["val/loss"], rel=1e-6),
    }
    assert result.objective == min(result.objective, result.metrics["val/loss"])
    record = json.loads((run_dir / "run.json").read_text())
    assert summary["config"]["run"]["git"] == record["git"] and summary["config"]["run"]["seed"] == 1337
    # the run's facts as it ended, the real vocabulary size, and only the run's own top-level keys
    assert summary["config"]["run"]["status"] == "finished" and summary["config"]["run"]["final"]["step"] == 150
    assert summary["config"]["model"]["vocab_size"] == 66 == record["config"]["model"]["vocab_size"]
    assert {key for key in summary["config"] if not key.startswith("_")} == {*record["config"], "run"}
    assert summary["config"]["run"]["versions"]["torch"] == torch.__version__

    model = build_model(cfg, result.recipe.corpus.vocab_size)
    reloaded = LanguageModelingTask.load_from_checkpoint(result.last_checkpoint, model=model)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=10)
    (metrics,) = trainer.validate(reloaded, datamodule=build_datamodule(cfg, result.recipe.corpus), verbose=False)
    assert metrics["val/loss"] == result.metrics["val/loss"]


def test_lstm_learns_shakespeare(make_config, shakespeare_path, unigram_entropy):
    recipe = ["data=tinyshakespeare", "tokenizer=char", "model=lstm", "data.block_size=64", "data.batch_size=12"]
    overrides = ["logger=none", "model.n_embd=128", "model.hidden_size=128", "model.n_layer=1", "model.dropout=0.0", "optimizer.lr=3e-3"]
    cfg = make_config([*short_run_overrides(shakespeare_path, recipe), *overrides])
    result = train(cfg)
    assert result.metrics["val/loss"] < unigram_entropy(result.recipe.corpus.tokens("train")) - 0.3
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {"train/loss", "val/loss", "lr/decay", "perf/tokens_per_sec", "perf/mfu"} <= set(rows[0])
    throughput = [
        (int(row["step"]), float(row["perf/tokens_per_sec"]), float(row["perf/mfu"])) for row in rows if row["perf/tokens_per_sec"]
    ]
    # every log_every_n_steps from the second interval on, in the row of the batch that ended it (see README "Steps")
    assert [step for step, _, _ in throughput] == list(range(19, 150, 10))
    assert all(tokens_per_sec > 0 and 0 < mfu < 1 for _, tokens_per_sec, mfu in throughput)  # no timing thresholds in tests


def test_flops_per_token_follow_the_palm_estimate():
    from framework.callbacks.throughput import compute_dtype, flops_per_token
    from framework.models import GPT, LSTMLanguageModel

    gpt = GPT(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False)
    position_embedding = 64 * 128
    assert flops_per_token(gpt) == 6 * (gpt.num_parameters() - position_embedding) + 12 * 4 * 128 * 64
    lstm = LSTMLanguageModel(vocab_size=65, n_embd=32, hidden_size=32, n_layer=1)
    assert flops_per_token(lstm) == 6 * lstm.num_parameters()  # the embedding is the tied head
    assert (compute_dtype("bf16-mixed"), compute_dtype("32"), compute_dtype("16-mixed")) == (torch.bfloat16, torch.float32, torch.float16)


def test_encoders_and_classifiers_count_no_flops_for_the_embeddings_they_only_look_up():
    from framework.callbacks.throughput import flops_per_token
    from framework.models import BertClassifier, BertMaskedLM, GPTClassifier, LSTMClassifier, TransformerClassifier

    def total(model):
        return sum(parameter.numel() for parameter in model.parameters())

    sizes = dict(vocab_size=1000, block_size=64, n_layer=2, n_head=4, n_embd=32)
    attention = 12 * 2 * 32 * 64
    for classifier in (GPTClassifier(**sizes, num_outputs=2), TransformerClassifier(**sizes, num_outputs=2)):
        tables = 1000 * 32 + 64 * 32  # token and position embeddings
        assert flops_per_token(classifier) == 6 * (total(classifier) - tables) + attention
    bert = BertClassifier(**sizes, num_outputs=2)
    assert flops_per_token(bert) == 6 * (total(bert) - (1000 + 64 + 2) * 32) + attention  # token, position, type tables
    mlm = BertMaskedLM(**sizes)
    encoder = total(mlm.encoder) - (1000 + 64 + 2) * 32
    assert flops_per_token(mlm) == 6 * encoder + attention + 0.15 * 6 * (32 * 32 + 1000 * 32)
    lstm = LSTMClassifier(vocab_size=1000, num_outputs=2, n_embd=16, hidden_size=32)
    assert flops_per_token(lstm) == 6 * (total(lstm) - 1000 * 16)


@pytest.mark.parametrize(
    "device_name, dtype, peak",
    [
        ("NVIDIA H200", torch.bfloat16, 989.4e12),  # dense, not the with-sparsity 1,979 TFLOP/s
        ("NVIDIA H200 NVL", torch.bfloat16, 835.5e12),
        ("NVIDIA H200", "tfloat32", 494.7e12),
        ("NVIDIA H100 80GB HBM3", torch.bfloat16, 989.4e12),  # Lightning's table
        ("NVIDIA A100-SXM4-80GB", torch.bfloat16, 312e12),
        ("Some Future GPU", torch.bfloat16, None),
    ],
)
def test_gpu_peak_is_the_dense_data_sheet_figure(monkeypatch, device_name, dtype, peak):
    from framework.callbacks.throughput import gpu_peak_flops

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: device_name)
    assert gpu_peak_flops(torch.device("cuda"), dtype) == peak


def test_cli_run_on_relative_text_file_writes_run_directory_logs_progress_and_prints_no_noise(tmp_path, shakespeare_path, run_module):
    (tmp_path / "corpus.txt").write_text(shakespeare_path.read_text()[:60_000])
    result = run_module(
        "framework.train",
        "data=text_files",
        "data.path=corpus.txt",
        "tokenizer=char",
        "logger=wandb",
        "data.block_size=32",
        "data.batch_size=8",
        "model.n_layer=1",
        "model.n_embd=32",
        "model.n_head=2",
        "trainer.max_steps=30",
        "trainer.val_check_interval=15",
        "trainer.limit_val_batches=2",
        "scheduler.warmup_steps=5",
        "callbacks.progress.log_every_s=0",  # stdout is a pipe here: a progress line after every step
        "threads=1",
        "sample.max_new_tokens=20",
        "sample.prompt=KING",
        f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "tokenizer.json", "metrics.csv", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert "val/loss" in result.stdout and "sample, prompt 'KING'" in result.stdout and str(run_dir) in result.stdout
    record = json.loads((run_dir / "run.json").read_text())
    assert (
        record["choices"]["data"] == "text_files" and record["choices"]["tokenizer"] == "char" and record["choices"]["experiment"] is None
    )

    progress = [line.split(" - ", 1)[1] for line in result.stdout.splitlines() if "[framework.progress]" in line]
    assert [int(line.split()[1].split("/")[0]) for line in progress] == [*range(1, 16), 15, *range(16, 31), 30]
    validated = [line for line in progress if "val/loss" in line]
    assert [line.split(" | ")[0] for line in validated] == ["step 15/30 (50%)", "step 30/30 (100%)"]
    assert all(" | loss " in line and " | elapsed 0:00:" in line and " | ETA " in line for line in validated)
    logged = (run_dir / "train.log").read_text()
    assert all(line in logged for line in progress)
    assert json.loads((run_dir / "run.json").read_text())["torch_threads"] == 1

    console = result.stdout + result.stderr
    for noise in ("Tip:", "litlogger", "LeafSpec", "anonymous setting", "Total FLOPs", "GPU available", "Seed set to", "Run history"):
        assert noise not in console, noise


def test_debug_presets(make_config, shakespeare_path, tmp_path):
    recipe = [
        "data=tinyshakespeare",
        f"data.path={shakespeare_path}",
        "tokenizer=char",
        "data.block_size=32",
        "data.batch_size=8",
        "model.n_layer=1",
        "model.n_embd=64",
        "model.n_head=2",
        "callbacks.progress=null",
        "sample.max_new_tokens=5",
    ]

    fast = train(make_config([*recipe, "debug=fdr", "logger=wandb", "logger.wandb.mode=offline"]))
    assert fast.trainer.global_step == 1 and "val/loss" in fast.metrics

    cfg = make_config([*recipe, "debug=overfit", "logger=csv", "trainer.max_steps=150", "trainer.log_every_n_steps=1", "optimizer.lr=3e-3"])
    cfg.paths.run_dir = str(tmp_path / "overfit")
    overfit = train(cfg)
    with (tmp_path / "overfit" / "metrics.csv").open() as file:
        losses = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert overfit.trainer.global_step == 150 and len(losses) == 150
    assert losses[-1] < 0.1 * losses[0]  # the same two batches, memorised

    cfg = make_config([*recipe, "debug=profile", "logger=none"])
    cfg.paths.run_dir = str(tmp_path / "profile")
    assert train(cfg).trainer.global_step == 30
    assert "run_training_batch" in (tmp_path / "profile" / "fit-profile.txt").read_text()


def _train_tiny_gpt(compile_model: bool) -> tuple[LanguageModelingTask, list[float]]:
    """Four SGD steps of a one-block GPT on fixed random windows; the loss of each step."""
    torch.manual_seed(0)
    model = GPT(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16)
    task = LanguageModelingTask(
        model,
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.5},
        scheduler={"_target_": "framework.optim.constant", "warmup_steps": 0},
        compile_model=compile_model,
    )
    losses = []
    task.on_train_batch_end = lambda outputs, batch, batch_idx: losses.append(float(outputs["loss"]))
    tokens = np.random.default_rng(0).integers(0, 17, size=400).astype(np.uint16)
    data = LanguageModelingDataModule(tokens, tokens[:50], block_size=8, batch_size=4, num_train_samples=16, seed=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=data)
    return task, losses


def test_compiled_model_trains_like_the_eager_one_and_keeps_its_parameter_names():
    eager, eager_losses = _train_tiny_gpt(compile_model=False)
    compiled, compiled_losses = _train_tiny_gpt(compile_model=True)
    assert compiled.model._compiled_call_impl is not None and eager.model._compiled_call_impl is None
    assert len(compiled_losses) == 4
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-5)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints interchangeable
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[name], value, rtol=1e-4, atol=1e-6)


def test_a_recipe_runs_for_fewer_steps_than_its_warmup(make_config, shakespeare_path, caplog):
    result = train(
        make_config(
            [
                "experiment=shakespeare_char",
                f"data.path={shakespeare_path}",
                "trainer.max_steps=20",
                "logger=none",
                "callbacks.progress=null",
                "sample.max_new_tokens=5",
            ]
        )
    )
    assert result.trainer.global_step == 20
    warnings = [record.message for record in caplog.records if "warmup_steps" in record.message]
    assert warnings == [
        "scheduler.warmup_steps=100 does not end before trainer.max_steps=20; warming up for 2 steps (a tenth of the run) instead."
    ]


@pytest.mark.parametrize(
    "peak_setting, origin",
    [
        ("callbacks.throughput.peak_flops=1e6", "(callbacks.throughput.peak_flops)"),
        (None, "(a 1024 x 1024 matmul measured as training started, too low when other processes used the cores then)"),
    ],
)
def test_an_mfu_above_one_is_logged_once_with_the_key_that_sets_the_peak(
    make_config, shakespeare_path, caplog, monkeypatch, peak_setting, origin
):
    monkeypatch.setattr("framework.callbacks.throughput.measured_matmul_flops", lambda dtype: 1e6)  # far below any CPU
    overrides = ["experiment=shakespeare_char", f"data.path={shakespeare_path}", "trainer.max_steps=20", "trainer.log_every_n_steps=5"]
    overrides += ["logger=csv", "callbacks.progress=null", "sample.max_new_tokens=5"]
    cfg = make_config([*overrides, *([peak_setting] if peak_setting else [])])
    train(cfg)
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        mfu = [float(row["perf/mfu"]) for row in csv.DictReader(file) if row.get("perf/mfu")]
    assert len(mfu) == 3 and min(mfu) > 1  # logged as computed, at steps 9, 14 and 19
    warnings = [record.message for record in caplog.records if "perf/mfu" in record.message]
    assert len(warnings) == 1
    stated = re.match(r"perf/mfu is ([\d.]+), above 1: the peak it divides by, 0\.0 GFLOP/s per device", warnings[0])
    assert float(stated[1]) == pytest.approx(mfu[0], abs=0.01) and origin in warnings[0]
