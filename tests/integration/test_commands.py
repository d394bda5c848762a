"""The commands on trained runs: evaluate, generate, predict, export."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from framework.checkpointing import load_checkpoint_file
from framework.data.labelled import read_labelled_file
from framework.errors import ConfigError, MissingInputError
from framework.run.evaluation import evaluate
from framework.run.export import export
from framework.run.inference import generate_text, predict
from framework.run.loading import load_run
from framework.run.training import train

TRANSFORMERS_DIR = Path(__file__).resolve().parents[2] / ".test-deps" / "transformers"


def trained_run(compose_config, root: Path, overrides: list[str]) -> Path:
    train(compose_config([*overrides, "logger=csv", "callbacks.progress=null", "trainer.limit_val_batches=1.0"], root))
    return root / "run"


def logged(run_dir: Path, metric: str) -> dict[int, float]:
    with (run_dir / "metrics.csv").open() as file:
        return {int(row["step"]): float(row[metric]) for row in csv.DictReader(file) if row.get(metric)}


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, shakespeare_path, compose_config):
    root = tmp_path_factory.mktemp("lm")
    (root / "corpus.txt").write_text(shakespeare_path.read_text()[:60_000])
    return trained_run(
        compose_config,
        root,
        [
            "data=text_files",
            f"data.path={root / 'corpus.txt'}",
            "tokenizer=char",
            "data.block_size=32",
            "data.batch_size=8",
            "model.n_layer=2",
            "model.n_head=2",
            "model.n_embd=32",
            "trainer.max_steps=40",
            "trainer.val_check_interval=20",
            "scheduler.warmup_steps=5",
            "sample.max_new_tokens=5",
        ],
    )


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, shared_data, compose_config):
    root = tmp_path_factory.mktemp("classifier")
    folder = root / "sst2"
    folder.mkdir()
    lines = (shared_data / "sst2" / "train.tsv").read_text().split("\n")
    (folder / "train.tsv").write_text("\n".join(lines[:3001]) + "\n")
    (folder / "dev.tsv").write_text((shared_data / "sst2" / "dev.tsv").read_text())
    run_dir = trained_run(
        compose_config,
        root,
        [
            "experiment=seed_lstm_sentiment",
            f"data.path={folder}",
            "trainer.max_epochs=null",  # the recipe's 10 epochs would take 940 steps here
            "trainer.max_steps=200",
            "trainer.val_check_interval=100",
            "optimizer.lr=3e-3",
        ],
    )
    return run_dir, folder


@pytest.mark.slow
def test_evaluate_reproduces_the_best_validation_loss_and_records_it(lm_run):
    record = evaluate(lm_run)
    losses = logged(lm_run, "val/loss")
    best_step = min(losses, key=losses.get)
    assert record["step"] == best_step and Path(record["checkpoint"]).name == f"best-step{best_step:06d}.ckpt"
    assert record["metrics"]["val/loss"] == pytest.approx(losses[best_step], abs=1e-6)
    assert record["metrics"]["val/ppl"] == pytest.approx(logged(lm_run, "val/ppl")[best_step], rel=1e-6)
    last = evaluate(lm_run, checkpoint="last")
    assert last["step"] == 40 and last["metrics"]["val/loss"] == pytest.approx(losses[40], abs=1e-6)
    recorded = [json.loads(line) for line in (lm_run / "evaluations.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in recorded][-2:] == [best_step, 40]


@pytest.mark.slow
def test_evaluate_on_another_corpus_with_unseen_characters(lm_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("Zoë paid 5€ for 漢字 tea — naïve!\n" * 300)
    record = evaluate(lm_run, data={"path": str(other)})
    assert record["data_overrides"] == [f"data.path={other}"]  # absolute
    metrics = record["metrics"]
    assert math.isfinite(metrics["val/loss"]) and metrics["val/loss"] > 0
    # each unseen character is one <unk> token standing for one character, so bits per character
    # equal bits per token: the characters were counted, not dropped
    assert metrics["val/bpc"] == pytest.approx(metrics["val/loss"] / math.log(2), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings, error, named",
    [
        ({"split": "test"}, ConfigError, "split=test"),
        ({"split": "train"}, ConfigError, "split='train'"),
        ({"data": {"pth": "x"}}, ConfigError, "'data.pth'. Did you mean 'data.path'"),
        ({"checkpoint": "nowhere.ckpt"}, MissingInputError, "checkpoint=nowhere.ckpt"),
        ({"data": {"block_size": 64}}, ConfigError, "would change model.block_size, which the trained model fixes (block_size=32)"),
    ],
)
def test_evaluate_refuses_bad_settings_naming_them(lm_run, settings, error, named):
    with pytest.raises(error) as refused:
        evaluate(lm_run, **settings)
    assert named in str(refused.value)


@pytest.mark.slow
def test_generation_is_seeded_crops_long_prompts_and_samples_the_nucleus(lm_run):
    run = load_run(lm_run)
    first = generate_text(run, "ROMEO:", 30, temperature=0.9, top_k=20, top_p=0.9, num_samples=3, seed=7)
    assert first == generate_text(run, "ROMEO:", 30, temperature=0.9, top_k=20, top_p=0.9, num_samples=3, seed=7)
    assert first != generate_text(run, "ROMEO:", 30, temperature=0.9, top_k=20, top_p=0.9, num_samples=3, seed=8)
    characters = [sample.replace("<unk>", "?") for sample in first]  # one character per token
    assert len(first) == 3 and all(sample.startswith("ROMEO:") and len(sample) == 36 for sample in characters)
    long_prompt = "KING HENRY:\n" * 20  # 240 characters, block_size 32
    (sample,) = generate_text(run, long_prompt, 5, seed=1)
    assert sample.startswith(long_prompt[-32:]) and len(sample.replace("<unk>", "?")) == 37
    greedy_like = generate_text(run, "ROMEO:", 20, top_p=1e-9, num_samples=2, seed=3)  # the nucleus is the top token
    assert greedy_like[0] == greedy_like[1]
    with pytest.raises(ConfigError, match=r"top_p=1.5 must be None or in \(0, 1\]"):
        generate_text(run, "ROMEO:", 5, top_p=1.5)


@pytest.mark.slow
def test_classifier_evaluation_prediction_and_test_split_agree(classifier_run, tmp_path):
    run_dir, folder = classifier_run
    accuracy = logged(run_dir, "val/acc")
    record = evaluate(run_dir)
    assert record["metrics"]["val/acc"] == pytest.approx(max(accuracy.values()), abs=1e-7)
    test_record = evaluate(run_dir, split="test", data={"test_file": "dev.tsv"})
    assert test_record["metrics"]["test/acc"] == pytest.approx(record["metrics"]["val/acc"], abs=1e-7)

    texts, labels = read_labelled_file(folder / "dev.tsv", "tsv", "sentence", "label", header=True, quoting="none")
    run = load_run(run_dir)
    predictions = predict(run, texts, batch_size=100)
    assert len(predictions) == 872 and all(label in ("0", "1") and 0.5 <= probability <= 1 for label, probability in predictions)
    correct = sum(predicted == label for (predicted, _), label in zip(predictions, labels))
    assert correct / 872 == pytest.approx(record["metrics"]["val/acc"], abs=1e-7)
    with pytest.raises(ConfigError, match="generation needs a language model"):
        generate_text(run, "good", 5)


@pytest.mark.slow
def test_predict_command_writes_one_label_and_probability_per_line(classifier_run, tmp_path, run_module):
    run_dir, _ = classifier_run
    (tmp_path / "input.txt").write_text("a charming and moving film\n\nthe worst , most boring mess of the year\n")
    result = run_module("framework.predict", f"run_dir={run_dir}", "input=input.txt", "output=out.tsv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text().splitlines()]
    assert len(rows) == 3 and all(label in ("0", "1") and 0.5 <= float(probability) <= 1 for label, probability in rows)


def test_predict_names_a_missing_input_file(tmp_path, monkeypatch, capsys):
    from framework.cli.predict import predict_job

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        predict_job(OmegaConf.create({"run_dir": str(tmp_path), "input": "missing.txt", "checkpoint": "best", "batch_size": 1}))
    assert exit_info.value.code == 2
    assert "Input file missing.txt does not exist; check input" in capsys.readouterr().err


@pytest.mark.slow
def test_safetensors_export_rebuilds_the_same_model(classifier_run, tmp_path):
    import hydra.utils
    from safetensors.torch import load_model

    run_dir, _ = classifier_run
    output = export(run_dir, "safetensors", tmp_path / "export")
    assert sorted(path.name for path in output.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    config = json.loads((output / "config.json").read_text())
    assert config["label_names"] == ["0", "1"] and config["data"] == {"max_length": 100, "padding": "pre", "truncation": "pre", "pad_id": 0}
    rebuilt = hydra.utils.instantiate(config["model"])
    load_model(rebuilt, str(output / "model.safetensors"))
    original = load_run(run_dir).task.model
    ids, mask = torch.randint(0, 100, (4, 100)), torch.ones(4, 100, dtype=torch.bool)
    assert torch.equal(rebuilt.eval()(ids, mask), original(ids, mask))
    with pytest.raises(ConfigError, match="already exists"):
        export(run_dir, "safetensors", output)


# Loads an exported directory with transformers (installed by `make test` into .test-deps/,
# outside the venv) and prints its logits for the given ids as JSON.
HF_LOGITS = """
import json, sys
sys.path.append(sys.argv[1])
import torch, transformers
model = transformers.GPT2LMHeadModel.from_pretrained(sys.argv[2]).eval()
with torch.no_grad():
    print(json.dumps(model(torch.tensor(json.loads(sys.argv[3]))).logits.tolist()))
"""


@pytest.mark.slow
def test_hf_export_loads_in_transformers_with_the_same_logits(lm_run, tmp_path):
    if not (TRANSFORMERS_DIR / "transformers").is_dir():
        pytest.fail(f"transformers is not installed in {TRANSFORMERS_DIR}; `make test` installs it there.", pytrace=False)
    output = export(lm_run, "hf", tmp_path / "hf")
    assert sorted(path.name for path in output.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    ours = load_run(lm_run).task.model
    ids = torch.randint(0, ours.config.vocab_size, (2, 32))
    loaded = subprocess.run(
        [sys.executable, "-c", HF_LOGITS, str(TRANSFORMERS_DIR), str(output), json.dumps(ids.tolist())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    with torch.no_grad():
        difference = (torch.tensor(json.loads(loaded.stdout)) - ours(ids)).abs().max().item()
    assert difference < 1e-5


@pytest.mark.slow
def test_checkpoints_from_a_compiled_model_load(lm_run, tmp_path):
    checkpoint = load_checkpoint_file(lm_run / "checkpoints" / "last.ckpt", mmap=False)
    model = load_run(lm_run, "last").task.model
    compiled_names = [f"model.{name}" for name in torch.compile(model).state_dict()]  # what training under torch.compile saves
    assert all(name.startswith("model._orig_mod.") for name in compiled_names)
    checkpoint["state_dict"] = dict(zip(compiled_names, model.state_dict().values()))
    torch.save(checkpoint, tmp_path / "compiled.ckpt")
    reloaded = load_run(lm_run, str(tmp_path / "compiled.ckpt")).task.model
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    assert torch.equal(reloaded(ids), model(ids))


def test_a_run_directory_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(MissingInputError, match=r"run_dir=.*nowhere is not a directory"):
        load_run(tmp_path / "nowhere")


@pytest.mark.slow
def test_commands_refuse_the_wrong_kind_of_run_and_bad_settings(lm_run, classifier_run, tmp_path):
    run_dir, _ = classifier_run
    with pytest.raises(ConfigError, match="prediction needs a classifier"):
        predict(load_run(lm_run), ["text"])
    with pytest.raises(
        ConfigError,
        match=r"format=hf exports GPT \(GPT-2 layout\) and masked-LM BERT models \(BERT layout\); .* is LSTMClassifier. Use format=safetensors",
    ):
        export(run_dir, "hf", tmp_path / "hf")
    with pytest.raises(ConfigError, match=r"format='onnx' must be one of safetensors, hf"):
        export(run_dir, "onnx")
    with pytest.raises(ConfigError, match=r"max_new_tokens=-1 at least 0"):
        generate_text(load_run(lm_run), "ROMEO:", -1)
    with pytest.raises(ConfigError, match="batch_size=0"):
        predict(load_run(run_dir), ["fine"], batch_size=0)


@pytest.mark.slow
def test_evaluate_on_a_second_corpus_scores_that_corpus(lm_run, tmp_path, run_module, shakespeare_path):
    import torch.nn.functional as F

    other = tmp_path / "other.txt"
    other.write_text(shakespeare_path.read_text()[500_000:540_000] + "Zoë paid 5€ for 漢字 tea — naïve!\n" * 40)
    result = run_module("framework.evaluate", f"run_dir={lm_run}", "data.path=other.txt", cwd=tmp_path)  # relative to where it runs
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout)
    assert record["data_overrides"] == [f"data.path={other}"]  # recorded absolute

    # The same numbers computed directly: the last 10 % of the other text, in windows of block_size 32.
    run = load_run(lm_run)
    text = other.read_text()
    val_text = text[int(len(text) * 0.9) :]
    ids = torch.tensor(run.tokenizer.encode(val_text).ids)
    windows = (len(ids) - 1) // 32
    inputs, targets = ids[: windows * 32].view(windows, 32), ids[1 : windows * 32 + 1].view(windows, 32)
    with torch.no_grad():
        loss = F.cross_entropy(run.task.model(inputs).flatten(0, 1), targets.flatten()).item()
    assert record["metrics"]["val/loss"] == pytest.approx(loss, abs=1e-5)
    vocabulary = run.tokenizer.get_vocab()
    unseen = sum(character not in vocabulary for character in val_text[1 : windows * 32 + 1])
    assert record["data"] == {"tokens": windows * 32, "unknown_tokens": unseen} and unseen >= 40 * 5


@pytest.mark.slow
def test_a_checkpoint_whose_task_had_the_nonfinite_policy_still_loads(lm_run, tmp_path):
    checkpoint = load_checkpoint_file(lm_run / "checkpoints" / "last.ckpt", mmap=False)
    checkpoint["run_config"]["task"]["on_nonfinite_loss"] = "stop"  # where older checkpoints kept it
    torch.save(checkpoint, tmp_path / "older.ckpt")
    assert load_run(lm_run, str(tmp_path / "older.ckpt")).step == 40
