"""The transfer effect at a small scale: an encoder pretrained with masked language modelling on
real text beats the same encoder from scratch on a small labelled task, with the same fine-tuning.

The labelled task asks whether a line of Tiny Shakespeare is as written (1) or has its words
shuffled (0): 500 training lines, 800 dev lines, none of them in the pretraining text. Which
words may follow which is what MLM learns from running text, and what 500 labelled lines cannot
teach an encoder from scratch. (On SST-2 at this scale pretraining does not help:
docs/tutorials/pretraining-and-fine-tuning.md.)
"""

import csv
import math
import random
from pathlib import Path

import pytest

from framework.run.training import train

pytestmark = pytest.mark.slow

SHAPE = ["model.n_layer=2", "model.n_head=2", "model.n_embd=64", "model.dropout=0.1"]
DATA = ["data=sst2", "data.max_length=24", "data.padding=post", "data.truncation=post", "data.quoting=none"]
COMMON = [*SHAPE, *DATA, "logger=csv", "callbacks.progress=null", "trainer.limit_val_batches=1.0"]
LABELLED, DEV = 500, 800


def shuffled(line: str) -> str:
    """``line`` with its words in another order (a fixed draw per line)."""
    words, draw = line.split(), random.Random(line)
    while " ".join(words) == line:
        draw.shuffle(words)
    return " ".join(words)


def write_split(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))


def last_accuracy(run_dir: Path) -> float:
    with (run_dir / "metrics.csv").open() as file:
        return float([row for row in csv.DictReader(file) if row.get("val/acc")][-1]["val/acc"])


def test_mlm_pretraining_beats_the_same_encoder_from_scratch_by_more_than_two_standard_errors(shakespeare_path, tmp_path, compose_config):
    lines = [line.strip() for line in shakespeare_path.read_text().split("\n") if len(line.split()) >= 6 and not line.strip().endswith(":")]
    random.Random(0).shuffle(lines)
    pretraining, task = lines[: -(LABELLED + DEV)], lines[-(LABELLED + DEV) :]
    (tmp_path / "text").mkdir()
    (tmp_path / "task").mkdir()
    write_split(tmp_path / "text" / "train.tsv", [(line, 0) for line in pretraining[:-1000]])  # labels unused
    write_split(tmp_path / "text" / "dev.tsv", [(line, 0) for line in pretraining[-1000:]])
    labelled = [(line, 1) if index % 2 == 0 else (shuffled(line), 0) for index, line in enumerate(task)]
    write_split(tmp_path / "task" / "train.tsv", labelled[:LABELLED])
    write_split(tmp_path / "task" / "dev.tsv", labelled[LABELLED:])

    mlm = ["task=masked_language_modeling", "model=bert", "tokenizer=wordpiece", "tokenizer.vocab_size=2000", "data.batch_size=128"]
    mlm += [
        f"data.path={tmp_path / 'text'}",
        "trainer.max_steps=800",
        "trainer.val_check_interval=800",
        "optimizer.lr=2e-3",
        "scheduler.warmup_steps=50",
    ]
    train(compose_config([*COMMON, *mlm], tmp_path / "mlm"))
    tokenizer = ["tokenizer=file", f"tokenizer.path={tmp_path / 'mlm' / 'run' / 'tokenizer.json'}"]
    tuning = ["task=classification", "model=bert_classifier", f"data.path={tmp_path / 'task'}", "data.batch_size=32", *tokenizer]
    tuning += ["trainer.max_steps=200", "trainer.val_check_interval=200", "optimizer.lr=3e-4", "scheduler.warmup_steps=10"]
    accuracy = {}
    for arm, init in (("pretrained", tmp_path / "mlm" / "run"), ("scratch", "null")):
        train(compose_config([*COMMON, *tuning, f"model.init_from={init}"], tmp_path / arm))
        accuracy[arm] = last_accuracy(tmp_path / arm / "run")
    pretrained, scratch = accuracy["pretrained"], accuracy["scratch"]
    standard_error = math.sqrt(pretrained * (1 - pretrained) / DEV + scratch * (1 - scratch) / DEV)  # of the difference
    assert pretrained - scratch > 2 * standard_error, accuracy
