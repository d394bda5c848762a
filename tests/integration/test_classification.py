"""Text classification: labelled files, word tokenizer, padding, classifiers, metrics, SST-2."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.data.labelled import encode_padded, label_ids, label_names, read_labelled_file
from framework.errors import ConfigError, DataError
from framework.models import LSTMClassifier, TransformerClassifier
from framework.run.training import train
from framework.tasks import ClassificationTask
from framework.tokenizer import train_word_tokenizer


def test_tsv_with_stray_quotes_and_odd_separators_is_split_on_newlines_only(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes('sentence\tlabel\n"a quoted start and a stray " mark\t1\nline\rbreak and \u2028 inside\t0\n'.encode())
    texts, labels = read_labelled_file(path, "tsv", "sentence", "label", header=True, quoting="none")
    assert texts == ['"a quoted start and a stray " mark', "line\rbreak and \u2028 inside"] and labels == ["1", "0"]


def test_csv_quoting_headerless_columns_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('"great, really great",pos\nawful,neg\n')
    assert read_labelled_file(tmp_path / "a.csv", "csv", "0", "1", header=False, quoting="minimal") == (
        ["great, really great", "awful"],
        ["pos", "neg"],
    )
    (tmp_path / "a.jsonl").write_text('{"review": "fine", "stars": 3}\n\n{"review": "bad", "stars": 1}\n')
    assert read_labelled_file(tmp_path / "a.jsonl", "jsonl", "review", "stars", header=True, quoting="none") == (
        ["fine", "bad"],
        ["3", "1"],
    )


@pytest.mark.parametrize(
    "content, arguments, message",
    [
        (
            "text\tlabel\nok\t1\n",
            ("sentence", "label", True),
            r"has no column 'sentence' \(data.text_column\); its header has \['text', 'label'\]",
        ),
        ("sentence\tlabel\nok\t1\nno label here\n", ("sentence", "label", True), r"line 3 has 1 field\(s\), but line 1 has 2"),
        (
            "sentence\tlabel\nGreat\tfun movie\t5\n",
            ("sentence", "label", True),
            r"line 2 has 3 field\(s\), but line 1 has 2. A text containing the delimiter needs CSV quoting: data.quoting=minimal",
        ),
        ("ok\t1\n", ("0", "5", False), r"data.label_column='5'.*columns are numbered 0..1"),
    ],
)
def test_bad_labelled_files_are_named_with_the_fault(tmp_path, content, arguments, message):
    path = tmp_path / "train.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_labelled_file(path, "tsv", *arguments, quoting="none")


def test_labels_are_indexed_from_the_training_split_and_unknown_ones_refused(tmp_path):
    names = label_names(["1", "0", "10", "2", "0"])
    assert names == ["0", "1", "2", "10"]  # numeric order, not text order
    assert label_ids(["10", "0"], names, tmp_path / "dev.tsv").tolist() == [3, 0]
    with pytest.raises(DataError, match=r"dev.tsv has label\(s\) \['7'\] that the training split does not have"):
        label_ids(["7"], names, tmp_path / "dev.tsv")


def test_word_tokenizer_keeps_the_most_frequent_words():
    tokenizer = train_word_tokenizer("the cat sat\nthe cat ran\nthe dog!", num_words=2)
    assert tokenizer.get_vocab() == {"<pad>": 0, "<unk>": 1, "the": 2, "cat": 3}
    assert tokenizer.encode("The CAT, the  bird.").ids == [2, 3, 2, 1]


def test_padding_and_truncation_at_either_end():
    tokenizer = train_word_tokenizer("a b c d e", num_words=5)  # a..e -> ids 2..6
    texts = ["a b c d e", "a b", ""]
    ids, mask = encode_padded(tokenizer, texts, max_length=3, padding="pre", truncation="pre", pad=0)
    assert ids.tolist() == [[4, 5, 6], [0, 2, 3], [0, 0, 0]]
    assert mask.tolist() == [[True] * 3, [False, True, True], [False, False, True]]  # an empty text is one pad token
    ids, mask = encode_padded(tokenizer, texts, max_length=3, padding="post", truncation="post", pad=0)
    assert ids.tolist() == [[2, 3, 4], [2, 3, 0], [0, 0, 0]]
    assert mask.tolist() == [[True] * 3, [True, True, False], [True, False, False]]


@pytest.mark.parametrize(
    "model",
    [
        LSTMClassifier(vocab_size=50, num_outputs=1, n_embd=8, hidden_size=16, n_layer=2, bidirectional=True),
        TransformerClassifier(vocab_size=50, num_outputs=3, block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.0),
        TransformerClassifier(vocab_size=50, num_outputs=1, block_size=12, n_layer=1, n_head=2, n_embd=16, pooling="first"),
    ],
    ids=["lstm", "transformer-mean", "transformer-first"],
)
@pytest.mark.parametrize("side", ["pre", "post"])
def test_a_padded_batch_predicts_what_each_example_alone_does(model, side):
    torch.manual_seed(0)
    model.eval()
    examples = [torch.randint(2, 50, (length,)) for length in (3, 7, 12, 1)]
    ids, mask = torch.zeros(4, 12, dtype=torch.long), torch.zeros(4, 12, dtype=torch.bool)
    for row, example in enumerate(examples):
        start = 12 - len(example) if side == "pre" else 0
        ids[row, start : start + len(example)], mask[row, start : start + len(example)] = example, True
    with torch.no_grad():
        batched = model(ids, mask)
        alone = torch.cat([model(example[None], torch.ones(1, len(example), dtype=torch.bool)) for example in examples])
    assert batched.shape == alone.shape and (batched - alone).abs().max().item() < 1e-6


class FixedLogits(torch.nn.Module):
    """A model that returns the logits it was built with, whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, ids, mask):
        return self.logits


def evaluate(task: ClassificationTask, labels: torch.Tensor) -> dict[str, float]:
    batch = (torch.zeros(len(labels), 2, dtype=torch.long), torch.ones(len(labels), 2, dtype=torch.bool), labels)
    losses, scores = task._losses(batch)
    task.metrics["val"].update(scores, labels)
    values = {name: value.item() for name, value in task.metrics["val"].compute().items()}
    return {**values, "loss": losses.mean().item()}


def test_binary_metrics_equal_the_values_computed_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0, -0.5])  # p = sigmoid(logit)
    labels = torch.tensor([1, 0, 0, 0, 1, 1])
    task = ClassificationTask(FixedLogits(logits[:, None]), optimizer={}, scheduler={}, num_classes=2)
    metrics = evaluate(task, labels)
    # predicted (p >= 0.5): 1 0 1 0 1 0 -> TP 2, FP 1, FN 1, TN 2
    assert metrics["acc"] == pytest.approx(4 / 6)
    assert metrics["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # AUROC: share of (positive, negative) pairs ranked correctly. Positives 2.0 and 1.0 beat all
    # three negatives (-1.0, 0.5, -3.0); -0.5 beats two of them: 8 of 9 pairs.
    assert metrics["auroc"] == pytest.approx(8 / 9)
    expected_loss = -np.mean(
        [np.log(1 / (1 + np.exp(-z))) if y else np.log(1 - 1 / (1 + np.exp(-z))) for z, y in zip(logits.tolist(), labels.tolist())]
    )
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_multiclass_metrics_equal_the_values_computed_by_hand():
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]])
    labels = torch.tensor([0, 1, 2, 2, 1])  # predicted 0 1 1 2 0
    task = ClassificationTask(FixedLogits(logits), optimizer={}, scheduler={}, num_classes=3)
    metrics = evaluate(task, labels)
    assert metrics["acc"] == pytest.approx(3 / 5)
    # per class F1: class 0: TP1 FP1 FN0 -> 2/3; class 1: TP1 FP1 FN1 -> 1/2; class 2: TP1 FP0 FN1 -> 2/3
    assert metrics["f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert "auroc" not in metrics


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task=classification"], r"task=classification needs labelled files \(data=sst2 or data=labelled_files\)"),
        (["data=sst2", "data.path=x"], r"task=language_modeling needs a text corpus"),
        (["task=classification", "data=sst2", "data.path=x", "model=gpt"], r"does not fit task=classification; use model=lstm_classifier"),
        (["experiment=sst2_transformer", "data.path=x", "model.block_size=32"], r"data.max_length=64 is longer than model.block_size=32"),
        (
            ["experiment=seed_lstm_sentiment", "data.path=x", "data.padding=left"],
            r"data.padding='left' has the wrong type: expected one of 'pre', 'post'",
        ),
    ],
)
def test_mismatched_task_data_and_model_are_refused_before_any_work(checked_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        checked_config(overrides)


@pytest.fixture
def sst2_slice(tmp_path, shared_data):
    """The first 6,000 SST-2 training sentences and the whole dev set."""
    folder = tmp_path / "sst2"
    folder.mkdir()
    lines = (shared_data / "sst2" / "train.tsv").read_text().split("\n")
    (folder / "train.tsv").write_text("\n".join(lines[:6001]) + "\n")
    (folder / "dev.tsv").write_text((shared_data / "sst2" / "dev.tsv").read_text())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["seed_lstm_sentiment", "sst2_transformer"])
def test_classifiers_learn_sst2_above_the_majority_baseline(make_config, sst2_slice, experiment):
    cfg = make_config(
        [
            f"experiment={experiment}",
            f"data.path={sst2_slice}",
            "logger=csv",
            "trainer.max_epochs=null",  # the recipes' epochs, replaced by a step budget
            "trainer.check_val_every_n_epoch=null",
            "trainer.max_steps=400",
            "trainer.val_check_interval=100",
            "callbacks.progress=null",
            "data.max_length=48",
            *(
                ["scheduler.warmup_steps=50", "model.n_embd=64", "model.n_layer=1"]
                if experiment == "sst2_transformer"
                else ["optimizer.lr=3e-3"]
            ),
        ]
    )
    result = train(cfg)
    _, labels = read_labelled_file(sst2_slice / "dev.tsv", "tsv", "sentence", "label", header=True, quoting="none")
    majority = max(labels.count("0"), labels.count("1")) / len(labels)
    assert majority == pytest.approx(444 / 872)
    assert result.metrics["val/acc"] > majority + 0.1
    assert set(result.metrics) == {"val/loss", "val/acc", "val/f1", "val/auroc"}

    run_dir = Path(cfg.paths.run_dir)
    with (run_dir / "metrics.csv").open() as file:
        evaluations = [(int(row["step"]), float(row["val/acc"])) for row in csv.DictReader(file) if row.get("val/acc")]
    assert [step for step, _ in evaluations] == [100, 200, 300, 400]
    best_step = max(evaluations, key=lambda item: item[1])[0]  # the best checkpoint is chosen by val/acc
    assert Path(result.best_checkpoint).name == f"best-step{best_step:06d}.ckpt"
    assert json.loads((run_dir / "run.json").read_text())["objective"] == {"val/acc": max(acc for _, acc in evaluations)}


def test_bpe_tokenizer_classifies_with_a_pad_id_past_its_vocabulary(make_config, tmp_path):
    from framework.run.recipes import ClassificationRecipe

    (tmp_path / "train.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"review number {i} was {'good' if i % 2 else 'bad'}\t{i % 3}\n" for i in range(60))
    )
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nanother review\t2\n")
    cfg = make_config(
        [
            "task=classification",
            "data=sst2",
            f"data.path={tmp_path}",
            "tokenizer=bpe",
            "tokenizer.vocab_size=300",
            "model=transformer_classifier",
            "data.max_length=24",
            "data.padding=post",
        ]
    )
    recipe = ClassificationRecipe(cfg)
    assert recipe.label_names == ["0", "1", "2"] and recipe.pad_id == recipe.tokenizer.get_vocab_size() <= 300
    model = recipe.model()
    assert model.wte.num_embeddings == recipe.pad_id + 1 and model.head.out_features == 3  # softmax over 3 classes
    val = recipe.splits["val"]
    length = len(recipe.tokenizer.encode("another review").ids)
    assert 0 < length < 24 and val.mask[0].tolist() == [True] * length + [False] * (24 - length)
    assert (val.ids[0, length:] == recipe.pad_id).all() and val.labels.tolist() == [2]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_length=0", r"data.max_length=0 must be at least 1"),
        ("data.batch_size=0", r"data.batch_size=0 must be at least 1"),
        ("model.hidden_size=0", r"model.hidden_size=0 must be a positive integer"),
        ("model.n_layer=0", r"model.n_layer=0 must be a positive integer"),
        ("model.dropout=1.5", r"model.dropout=1.5 must be in \[0, 1\)"),
    ],
)
def test_classification_sizes_are_checked_before_any_work(checked_config, override, message):
    with pytest.raises(ConfigError, match=message):
        checked_config(["experiment=seed_lstm_sentiment", "data.path=x", override])


def test_the_word_tokenizer_checks_its_vocabulary_size():
    with pytest.raises(ConfigError, match=r"tokenizer.num_words=0 must be at least 1"):
        train_word_tokenizer("some words", num_words=0)


def labelled_folder(tmp_path: Path, train: str, dev: str) -> Path:
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n" + train)
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n" + dev)
    return tmp_path


@pytest.mark.parametrize(
    "train_rows, dev_rows, overrides, error, message",
    [
        ("good\t1\nfine\t1\n", "ok\t1\n", [], DataError, r"has only the label\(s\) \['1'\]; a classifier needs at least two classes"),
        ("good\t1\nbad\t0\n", "", [], DataError, r"dev.tsv has no examples; the val split needs at least one"),
        (
            "good\t1\nbad\t0\nmeh\t2\n",
            "ok\t1\n",
            ["optimized_metric=val/auroc"],
            ConfigError,
            r"val/auroc is logged for two classes only; this data has 3",
        ),
        ("good\t1\nbad\t0\n", "ok\t1\n", ["model.num_outputs=2"], ConfigError, r"model.num_outputs=2 does not fit 2 classes, which need 1"),
        ("good\t1\nbad\t0\n", "ok\t1\n", ["model.vocab_size=3"], ConfigError, r"model.vocab_size=3 is smaller than the 4 ids"),
    ],
)
def test_labelled_data_that_cannot_train_a_classifier_is_refused(make_config, tmp_path, train_rows, dev_rows, overrides, error, message):
    from framework.run.recipes import ClassificationRecipe

    folder = labelled_folder(tmp_path, train_rows, dev_rows)
    cfg = make_config(["experiment=seed_lstm_sentiment", f"data.path={folder}", *overrides])
    with pytest.raises(error, match=message):
        ClassificationRecipe(cfg).model()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "fine", "label": 1}\nnot json\n', r"a.jsonl line 2 is not valid JSON"),
        ('{"text": "fine"}\n', r"a.jsonl line 1 has no field 'label'; its fields are \['text'\]"),
    ],
)
def test_bad_jsonl_records_are_named_by_line(tmp_path, content, message):
    (tmp_path / "a.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        read_labelled_file(tmp_path / "a.jsonl", "jsonl", "text", "label", header=True, quoting="none")


def test_unbalanced_csv_quotes_suggest_literal_quoting(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"an "odd" one,1\n')
    with pytest.raises(DataError, match=r"a.csv line 2: .*use data.quoting=none"):
        read_labelled_file(tmp_path / "a.csv", "csv", "text", "label", header=True, quoting="minimal")


def test_word_tokenizer_refuses_nothing_to_learn_from():
    with pytest.raises(ConfigError, match=r"tokenizer.num_words=0 must be at least 1"):
        train_word_tokenizer("some words", num_words=0)
    with pytest.raises(DataError, match="without words"):
        train_word_tokenizer(" \n ")


def test_constructor_checks_print_one_paragraph_through_hydra_instantiate(capsys):
    import hydra.utils

    from framework.cli.precheck import user_errors_exit

    with pytest.raises(SystemExit) as exit_info, user_errors_exit():
        hydra.utils.instantiate({"_target_": "framework.models.LSTMClassifier", "vocab_size": 10, "num_outputs": 0})
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "Error: model.num_outputs=0 must be a positive integer."


@pytest.mark.slow
def test_a_run_given_in_epochs_takes_that_many_passes_over_the_training_split(make_config, shared_data, tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    lines = (shared_data / "sst2" / "train.tsv").read_text().split("\n")
    (folder / "train.tsv").write_text("\n".join(lines[:101]) + "\n")  # header and 100 sentences: 4 batches of 32
    (folder / "dev.tsv").write_text("\n".join((shared_data / "sst2" / "dev.tsv").read_text().split("\n")[:41]) + "\n")
    cfg = make_config(
        ["experiment=seed_lstm_sentiment", f"data.path={folder}", "trainer.max_epochs=3", "logger=csv", "callbacks.progress=null"]
    )
    result = train(cfg)
    assert result.trainer.global_step == 12
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        assert [int(row["step"]) for row in csv.DictReader(file) if row.get("val/acc")] == [4, 8, 12]  # once per epoch
    assert json.loads((Path(cfg.paths.run_dir) / "run.json").read_text())["config"]["trainer"]["max_steps"] == 12
