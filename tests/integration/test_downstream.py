"""Downstream evaluation end to end: a trained model beats chance on the continuation task where an
untrained one does not (nor on the cloze, which the README's Results models beat:
benchmarks/downstream.py), framework.evaluate writes the harness figures to evaluations.jsonl
and the run's W&B run, callbacks.downstream logs them during training; val/bpb counts bytes."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from framework.harness.evaluation import HarnessSettings, find_tasks, run_tasks
from framework.harness.model import HarnessModel
from framework.models import GPT
from framework.run.evaluation import evaluate, with_runs_shakespeare
from framework.run.loading import load_run
from framework.run.training import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(shakespeare_path, tmp_path_factory, compose_config, harness_cache):
    """The shakespeare_char GPT after 150 steps, tracked with W&B offline, scored on the
    continuation task by the downstream callback at its last step."""
    root = tmp_path_factory.mktemp("trained")
    cfg = compose_config(
        [
            "experiment=shakespeare_char",
            f"data.path={shakespeare_path}",
            "trainer.max_steps=150",
            "trainer.val_check_interval=150",
            "scheduler.warmup_steps=20",
            "logger=wandb",
            "logger.wandb.mode=offline",
            "callbacks.progress=null",
            "sample.max_new_tokens=5",
            "callbacks.downstream.tasks=[shakespeare_continuation]",
            f"callbacks.downstream.shakespeare={shakespeare_path}",
            f"callbacks.downstream.cache_dir={harness_cache}",
        ],
        root,
    )
    train(cfg)
    return Path(cfg.paths.run_dir)


@pytest.fixture(scope="module")
def evaluated(trained_run, harness_settings):
    """``(record, W&B runs before it)`` of ``framework.evaluate`` on the trained run's last
    checkpoint with the continuation task and the stdlib cloze."""
    before = sorted((trained_run / "wandb").glob("offline-run-*"))
    tasks = ["shakespeare_continuation", "stdlib_cloze"]
    record = evaluate(trained_run, checkpoint="last", harness=harness_settings(tasks))
    return record, before


def test_a_trained_model_beats_chance_on_the_continuation_task_and_an_untrained_one_does_not(trained_run, evaluated, harness_settings):
    trained = evaluated[0]["harness"]["shakespeare_continuation"]
    assert trained["items"] == 500 and trained["chance"] == 0.25 and trained["p_value"] < 0.01

    run = load_run(trained_run, "last")
    torch.manual_seed(0)
    untrained = GPT(vocab_size=run.tokenizer.get_vocab_size(), block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
    tasks = find_tasks(harness_settings(["shakespeare_continuation", "shakespeare_cloze"]))
    continuation, cloze = run_tasks(HarnessModel(untrained, run.tokenizer, 64, batch_size=64), tasks).values()
    assert continuation["p_value"] > 0.01 and abs(continuation["acc"] - 0.25) < 3 * math.sqrt(0.25 * 0.75 / 500)
    assert cloze["items"] == 500 and cloze["p_value"] > 0.01


def test_evaluate_records_harness_figures_and_adds_them_to_the_wandb_run(trained_run, evaluated, tmp_path, run_module):
    record, before = evaluated
    assert set(record["harness"]) == {"shakespeare_continuation", "stdlib_cloze"}
    assert record["harness"]["stdlib_cloze"]["items"] == 500 and "perplexity" in record["harness"]["stdlib_cloze"]
    stored = json.loads((trained_run / "evaluations.jsonl").read_text().splitlines()[-1])
    assert stored["harness"] == record["harness"] and stored["step"] == 150

    (added,) = set(sorted((trained_run / "wandb").glob("offline-run-*"))) - set(before)
    inspected = run_module("wandb", "leet", "inspect", "--json", str(added), cwd=tmp_path)
    history = [json.loads(line)["history"]["item"] for line in inspected.stdout.splitlines() if '"type":"history"' in line.replace(" ", "")]
    (row,) = [item for item in history if "eval/shakespeare_continuation/acc" in item]
    assert (
        row["trainer/global_step"] == 150
        and row["eval/shakespeare_continuation/acc"] == record["harness"]["shakespeare_continuation"]["acc"]
    )


def test_the_callback_logs_the_figure_evaluate_gives_for_the_same_checkpoint(trained_run, evaluated):
    with (trained_run / "metrics.csv").open() as file:
        logged = {
            int(row["step"]): float(row["eval/shakespeare_continuation/acc"])
            for row in csv.DictReader(file)
            if row.get("eval/shakespeare_continuation/acc")
        }
    assert logged == {150: evaluated[0]["harness"]["shakespeare_continuation"]["acc"]}


def test_evaluate_reads_tiny_shakespeare_from_the_runs_own_data_path(trained_run, shakespeare_path):
    config = load_run(trained_run, "last").config
    assert with_runs_shakespeare(HarnessSettings(tasks=["shipped"]), config).shakespeare == str(shakespeare_path)
    given = HarnessSettings(tasks=["shipped"], shakespeare="elsewhere.txt")
    assert with_runs_shakespeare(given, config) is given


def test_bits_per_byte_divide_the_nats_by_the_utf8_bytes_of_the_scored_text(trained_run):
    with (trained_run / "metrics.csv").open() as file:
        (row,) = [row for row in csv.DictReader(file) if row.get("val/bpb") and row["step"] == "150"]
    # Tiny Shakespeare is ASCII: one byte per character, so bits per byte equal bits per character
    assert float(row["val/bpb"]) == float(row["val/bpc"]) == pytest.approx(float(row["val/loss"]) / math.log(2))
