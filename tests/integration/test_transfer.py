"""Masked language modelling, and runs that start from another run's weights (``model.init_from``):
an MLM encoder into a classifier, a GPT into a classifier and into continued pretraining, with
the refusals of sources that do not fit."""

import csv
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from framework.checkpointing import load_checkpoint_file
from framework.data import TextLines
from framework.errors import CheckpointMismatchError, ConfigError, MissingInputError
from framework.run.evaluation import evaluate
from framework.run.inference import predict
from framework.run.loading import load_run
from framework.run.training import train

pytestmark = pytest.mark.slow

COMMON = ["logger=csv", "callbacks.progress=null", "trainer.limit_val_batches=1.0", "sample.max_new_tokens=5"]
MODEL_SIZES = ["model.n_layer=2", "model.n_head=2", "model.n_embd=32"]
BERT_SIZES = [*MODEL_SIZES, "tokenizer=wordpiece", "tokenizer.vocab_size=1000"]
SST2_SHAPE = ["data.max_length=32", "data.padding=post", "data.truncation=post", "data.batch_size=16"]


def logged(run_dir: Path, metric: str) -> dict[int, float]:
    with (run_dir / "metrics.csv").open() as file:
        return {int(row["step"]): float(row[metric]) for row in csv.DictReader(file) if row.get(metric)}


@pytest.fixture(scope="module")
def sst2_small(tmp_path_factory, shared_data) -> Path:
    """SST-2's first 3,000 training phrases and its dev set."""
    folder = tmp_path_factory.mktemp("sst2")
    lines = (shared_data / "sst2" / "train.tsv").read_text().split("\n")
    (folder / "train.tsv").write_text("\n".join(lines[:3001]) + "\n")
    (folder / "dev.tsv").write_text((shared_data / "sst2" / "dev.tsv").read_text())
    return folder


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, sst2_small, compose_config) -> Path:
    root = tmp_path_factory.mktemp("mlm")
    overrides = ["task=masked_language_modeling", "model=bert", "data=sst2", f"data.path={sst2_small}", *BERT_SIZES, *SST2_SHAPE]
    train(compose_config([*overrides, *COMMON, "trainer.max_steps=30", "trainer.val_check_interval=15"], root))
    return root / "run"


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, shakespeare_path, compose_config) -> Path:
    root = tmp_path_factory.mktemp("gpt")
    (root / "corpus.txt").write_text(shakespeare_path.read_text()[:60_000])
    overrides = ["data=text_files", f"data.path={root / 'corpus.txt'}", "tokenizer=char", "data.block_size=32", "data.batch_size=8"]
    sizes = ["model.n_layer=2", "model.n_head=2", "model.n_embd=32", "trainer.max_steps=20", "trainer.val_check_interval=10"]
    train(compose_config([*overrides, *sizes, *COMMON, "scheduler.warmup_steps=2"], root))
    return root / "run"


def model_state(run_dir: Path, prefix: str, checkpoint: str = "last") -> dict[str, torch.Tensor]:
    return {name: value for name, value in load_run(run_dir, checkpoint).task.model.state_dict().items() if name.startswith(prefix)}


def test_masked_language_modelling_logs_its_metrics_and_evaluation_reproduces_them(mlm_run):
    losses, accuracy, perplexity = logged(mlm_run, "val/loss"), logged(mlm_run, "val/mlm_acc"), logged(mlm_run, "val/ppl")
    assert sorted(losses) == [15, 30]
    assert losses[30] < math.log(1000)  # below a uniform guess over the vocabulary
    assert perplexity[30] == pytest.approx(math.exp(losses[30]), rel=1e-5)
    assert 0.0 < accuracy[30] < 1.0
    record = evaluate(mlm_run, checkpoint="last")  # the validation masks are fixed: the same figures
    assert record["metrics"]["val/loss"] == pytest.approx(losses[30], abs=1e-5)
    assert record["metrics"]["val/mlm_acc"] == pytest.approx(accuracy[30], abs=1e-6)


def test_a_classifier_fine_tuned_from_an_mlm_run_starts_from_its_encoder(mlm_run, sst2_small, tmp_path, make_config, caplog):
    overrides = ["task=classification", "model=bert_classifier", "data=sst2", f"data.path={sst2_small}", *BERT_SIZES, *SST2_SHAPE]
    frozen = ["finetune.freeze_steps=10", "trainer.max_steps=10", "trainer.val_check_interval=10", f"model.init_from={mlm_run}"]
    with caplog.at_level(logging.INFO, logger="framework.run.pretrained"):
        train(make_config([*overrides, *frozen, *COMMON]))
    pretrained = model_state(mlm_run, "encoder.", "best")  # what model.init_from=<run dir> loads
    message = next(record.getMessage() for record in caplog.records if "model.init_from" in record.getMessage())
    assert f"loaded {len(pretrained)} tensors" in message and "new: head.weight, head.bias" in message and "not used: mlm.*" in message
    tuned = model_state(tmp_path / "run", "")
    assert all(torch.equal(tuned[name], value) for name, value in pretrained.items())  # frozen for every step
    assert (tmp_path / "run" / "tokenizer.json").read_text() == (mlm_run / "tokenizer.json").read_text()
    assert logged(tmp_path / "run", "val/acc")[10] > 0.0


def gpt_classifier(sst2_small: Path) -> list[str]:
    """A GPT classifier on SST-2 with the sizes and tokenizer of ``gpt_run``."""
    return ["task=classification", "model=gpt_classifier", "data=sst2", f"data.path={sst2_small}", "data.max_length=32", "tokenizer=char"]


def test_a_gpt_run_starts_a_classifier_and_a_continued_pretraining(gpt_run, sst2_small, tmp_path, compose_config):
    shape = ["model.n_layer=2", "model.n_head=2", "model.n_embd=32", f"model.init_from={gpt_run}"]
    classifier = gpt_classifier(sst2_small)
    train(compose_config([*classifier, *shape, *COMMON, "finetune.freeze_steps=5", "trainer.max_steps=5"], tmp_path / "classifier"))
    pretrained = model_state(gpt_run, "transformer.", "best")
    tuned = model_state(tmp_path / "classifier" / "run", "")
    assert all(torch.equal(tuned[name], value) for name, value in pretrained.items())
    corpus = ["data=text_files", f"data.path={gpt_run.parent / 'corpus.txt'}", "tokenizer=char", "data.block_size=32", "data.batch_size=8"]
    again = [*corpus, *shape, *COMMON, "trainer.max_steps=4", "optimizer.lr=0.0", "scheduler.min_lr=0.0", "scheduler.warmup_steps=0"]
    train(compose_config(again, tmp_path / "continued"))  # a new optimizer; with lr 0 the weights stay the source's
    continued = model_state(tmp_path / "continued" / "run", "")
    assert all(torch.equal(continued[name], value) for name, value in model_state(gpt_run, "", "best").items())
    optimizer = load_checkpoint_file(tmp_path / "continued" / "run" / "checkpoints" / "last.ckpt")["optimizer_states"][0]
    assert {int(state["step"]) for state in optimizer["state"].values()} == {4}  # a new optimizer: 4 steps, not the source's 20 + 4


@pytest.mark.parametrize(
    "source, overrides, error, message",
    [
        (
            "mlm",
            ["model.n_layer=3"],
            ConfigError,
            r"differs from the configured one in model.n_layer=3 \(pretrained: 2\)\. Set model.n_layer=2",
        ),
        ("mlm", ["model.vocab_size=1200"], ConfigError, r"model.vocab_size=1200 \(pretrained: 1000\)"),
        ("mlm", ["tokenizer.vocab_size=500"], ConfigError, r"fixes the tokenizer.*tokenizer.vocab_size=500 \(pretrained: 1000\)"),
        ("empty", [], MissingInputError, r"is a directory without checkpoints/last.ckpt"),
        ("missing", [], MissingInputError, r"does not exist; give a run directory, a checkpoint file or hf:<dir>"),
        ("exported", [], MissingInputError, r"without checkpoints/last.ckpt.*It holds a config.json: did you mean model.init_from=hf:"),
        (
            "mlm",
            ["tokenizer=file", "tokenizer.path=GPT_TOKENIZER"],
            ConfigError,
            r"tokenizer.path=.* is not the tokenizer of model.init_from=",
        ),
        (
            "gpt",
            ["tokenizer=char"],
            CheckpointMismatchError,
            r"is a model of another architecture: it holds transformer\.\*, lm_head\.\*, the configured model BertClassifier needs encoder\.\*, head\.\*",
        ),
    ],
    ids=["n_layer", "vocab_size", "tokenizer", "no-checkpoint", "missing", "hf-without-prefix", "tokenizer-file", "gpt-into-bert"],
)
def test_a_source_that_does_not_fit_is_refused_before_training(
    mlm_run, gpt_run, sst2_small, tmp_path, make_config, source, overrides, error, message
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "config.json").write_text("{}")
    origin = {
        "mlm": mlm_run,
        "gpt": gpt_run,
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing",
        "exported": tmp_path / "exported",
    }[source]
    overrides = [override.replace("GPT_TOKENIZER", str(gpt_run / "tokenizer.json")) for override in overrides]
    tokenizer = ["tokenizer=wordpiece", "tokenizer.vocab_size=1000"] if source != "gpt" and "tokenizer=file" not in overrides else []
    base = ["task=classification", "model=bert_classifier", "data=sst2", f"data.path={sst2_small}", *MODEL_SIZES, *tokenizer, *SST2_SHAPE]
    with pytest.raises(error, match=message):
        train(make_config([*base, *overrides, f"model.init_from={origin}", *COMMON, "trainer.max_steps=2"]))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["tokenizer=wordpiece", "task.mask_probability=1.5"], r"task.mask_probability=1.5 must be in \(0, 1\)"),
        (
            ["tokenizer=word"],
            r"needs BERT's special tokens \[PAD\] \[CLS\] \[SEP\] \[MASK\], which framework.tokenizer.train_word_tokenizer",
        ),
        (
            ["tokenizer=file", "tokenizer.path=GPT_TOKENIZER"],
            r"needs a tokenizer with \[PAD\], \[CLS\], \[SEP\], \[MASK\]; this one lacks \[PAD\]",
        ),
    ],
    ids=["probability", "word-tokenizer", "char-tokenizer-file"],
)
def test_masked_language_modelling_settings_that_cannot_work_are_refused(sst2_small, gpt_run, tmp_path, make_config, overrides, message):
    overrides = [override.replace("GPT_TOKENIZER", str(gpt_run / "tokenizer.json")) for override in overrides]
    base = ["task=masked_language_modeling", "model=bert", "data=sst2", f"data.path={sst2_small}", *MODEL_SIZES, *SST2_SHAPE]
    with pytest.raises(ConfigError, match=message):
        train(make_config([*base, *overrides, *COMMON, "trainer.max_steps=2"]))
    assert not (tmp_path / "run" / "checkpoints").exists()


def mlm_overrides(sst2_small: Path) -> list[str]:
    """A tiny MLM run with a constant learning rate (a run stopped early and continued takes the
    same steps) and no dropout (processes draw their own)."""
    data = ["task=masked_language_modeling", "model=bert", "data=sst2", f"data.path={sst2_small}", *BERT_SIZES, *SST2_SHAPE]
    return [*data, *COMMON, "model.dropout=0.0", "scheduler=constant", "scheduler.warmup_steps=2", "trainer.val_check_interval=5"]


def test_an_mlm_run_resumed_at_step_5_ends_bitwise_as_a_straight_run(sst2_small, tmp_path, compose_config):
    train(compose_config([*mlm_overrides(sst2_small), "trainer.max_steps=10"], tmp_path / "straight"))
    train(compose_config([*mlm_overrides(sst2_small), "trainer.max_steps=5"], tmp_path / "resumed"))
    train(compose_config([*mlm_overrides(sst2_small), "trainer.max_steps=10"], tmp_path / "resumed"))
    straight, resumed = (model_state(tmp_path / name / "run", "") for name in ("straight", "resumed"))
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_an_mlm_run_on_two_processes_with_half_batches_follows_one_process(sst2_small, tmp_path, compose_config, run_module):
    train(compose_config([*mlm_overrides(sst2_small), "trainer.max_steps=10", "trainer.accelerator=cpu"], tmp_path / "one"))
    two = [
        *mlm_overrides(sst2_small),
        "trainer.max_steps=10",
        "data.batch_size=8",
        "strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
    ]
    result = run_module("framework.train", *two, f"hydra.run.dir={tmp_path / 'two'}", f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    one_dir, two_dir = tmp_path / "one" / "run", tmp_path / "two"
    for metric in ("val/loss", "val/mlm_acc"):
        one, two_values = logged(one_dir, metric), logged(two_dir, metric)
        assert sorted(one) == sorted(two_values) == [5, 10]
        assert all(abs(one[step] - two_values[step]) < 1e-5 for step in one), metric
    first, second = model_state(one_dir, ""), model_state(two_dir, "")
    assert max((first[name] - second[name]).abs().max().item() for name in first) < 1e-5


def test_a_fine_tuned_run_resumes_without_its_source_predicts_and_refuses_changed_groups(gpt_run, sst2_small, tmp_path, compose_config):
    source = tmp_path / "source"
    shutil.copytree(gpt_run, source)
    classifier = gpt_classifier(sst2_small)
    overrides = [*classifier, *MODEL_SIZES, f"model.init_from={source}", *COMMON, "finetune.head_lr=1e-3"]
    train(compose_config([*overrides, "trainer.max_steps=3"], tmp_path / "tuned"))
    shutil.rmtree(source)  # a resumed run reads its own checkpoint, not the source
    train(compose_config([*overrides, "trainer.max_steps=5"], tmp_path / "tuned"))
    run = load_run(tmp_path / "tuned" / "run", "last")
    assert run.step == 5 and run.pad_id == 0  # the char tokenizer has no pad token; the pretrained embedding no spare row
    (label, probability), *_ = predict(run, ["a gorgeous , witty , seductive movie ."])  # shorter than max_length: padded
    assert label in ("0", "1") and 0.5 <= probability <= 1.0
    with pytest.raises(
        CheckpointMismatchError,
        match=r"groups \['decay/body', 'no_decay/body', 'decay/head', 'no_decay/head'\], but this run's settings make \['decay', 'no_decay'\]: finetune.head_lr",
    ):
        train(compose_config([*overrides[:-1], "trainer.max_steps=7"], tmp_path / "tuned"))


def test_masked_language_modelling_reads_plain_text_one_example_per_line(shakespeare_path, tmp_path, compose_config):
    text = shakespeare_path.read_text()[:20_000]
    (tmp_path / "plays.txt").write_text(text)
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    files = TextLines(path=str(tmp_path / "plays.txt"), val_fraction=0.1)
    train_lines, val_lines = files.read("train")[0], files.read("val")[0]
    assert train_lines + val_lines == lines and len(train_lines) == int(len(lines) * 0.9)
    overrides = ["task=masked_language_modeling", "model=bert", "tokenizer=wordpiece", "tokenizer.vocab_size=500", "data=text_lines"]
    overrides += [
        f"data.path={tmp_path / 'plays.txt'}",
        "data.max_length=8",
        *MODEL_SIZES,
        *COMMON,
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
    ]
    result = train(compose_config(overrides, tmp_path / "mlm"))
    assert result.recipe.splits["val"].ids.shape == (len(val_lines), 8)  # long lines cut at data.max_length
    assert result.recipe.samples_per_epoch() == len(train_lines) and result.recipe.splits["train"].mask.sum(axis=1).max() == 8
    assert sorted(name for name in result.metrics if name.startswith("val/")) == ["val/loss", "val/mlm_acc", "val/ppl"]
    with pytest.raises(
        ConfigError, match=r"task=classification needs labelled files \(data=sst2 or data=labelled_files\), but data is text lines"
    ):
        train(
            compose_config(
                ["task=classification", "model=bert_classifier", "data=text_lines", f"data.path={tmp_path / 'plays.txt'}"], tmp_path / "c"
            )
        )
