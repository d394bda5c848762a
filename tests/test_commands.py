"""The commands on trained runs: evaluate, generate, predict, export."""

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from framework import evaluate as evaluate_command
from framework.checkpointing import load_checkpoint_file
from framework.data.labelled import read_labelled_file
from framework.errors import ConfigError
from framework.evaluate import evaluate
from framework.export import export
from framework.generate import generate_text
from framework.loading import load_run
from framework.predict import predict
from framework.training import train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def trained_run(root: Path, overrides: list[str]) -> Path:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "logger=csv", "callbacks.progress_bar=null", "trainer.limit_val_batches=1.0"])
    with open_dict(cfg):
        cfg.paths.root_dir, cfg.paths.run_dir, cfg.paths.cache_dir = str(root), str(root / "run"), str(root / "cache")
    train(cfg)
    return root / "run"


def logged(run_dir: Path, metric: str) -> dict[int, float]:
    with (run_dir / "metrics.csv").open() as file:
        return {int(row["step"]): float(row[metric]) for row in csv.DictReader(file) if row.get(metric)}


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, shakespeare_path):
    root = tmp_path_factory.mktemp("lm")
    (root / "corpus.txt").write_text(shakespeare_path.read_text()[:60_000])
    return trained_run(root, [
        "data=text_files", f"data.path={root / 'corpus.txt'}", "tokenizer=char", "data.block_size=32", "data.batch_size=8",
        "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "trainer.max_steps=40", "trainer.val_check_interval=20",
        "scheduler.warmup_steps=5", "sample.max_new_tokens=5",
    ])


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("classifier")
    folder = root / "sst2"
    folder.mkdir()
    lines = (shared_data / "sst2" / "train.tsv").read_text().split("\n")
    (folder / "train.tsv").write_text("\n".join(lines[:3001]) + "\n")
    (folder / "dev.tsv").write_text((shared_data / "sst2" / "dev.tsv").read_text())
    run_dir = trained_run(root, [
        "experiment=seed_lstm_sentiment", f"data.path={folder}", "trainer.max_steps=200", "trainer.val_check_interval=100", "optimizer.lr=3e-3",
    ])
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
    record = evaluate(lm_run, data_overrides=[f"data.path={other}"])
    assert record["data_overrides"] == [f"data.path={other}"]
    assert 0 < record["metrics"]["val/loss"] < 20 and record["metrics"]["val/loss"] == record["metrics"]["val/loss"]  # finite, not NaN


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["split=test"], r"split=test: this run's data has no test split"),
        (["split=train"], r"split='train' must be val or test"),
        (["data.pth=x"], r"Unknown config key 'data.pth'. Did you mean 'data.path'"),
        (["checkpoint=nowhere.ckpt"], r"checkpoint=nowhere.ckpt: nowhere.ckpt does not exist"),
        (["top_k=3"], r"Unknown argument 'top_k'; valid: run_dir, split, checkpoint"),
    ],
)
def test_evaluate_refuses_bad_arguments_in_one_paragraph(lm_run, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_command.main([f"run_dir={lm_run}", *arguments])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(error.strip().splitlines()) == 1
    assert __import__("re").search(message, error)


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
    test_record = evaluate(run_dir, split="test", data_overrides=["data.test_file=dev.tsv"])
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
def test_predict_command_writes_one_label_and_probability_per_line(classifier_run, tmp_path):
    from framework.predict import main

    run_dir, _ = classifier_run
    (tmp_path / "input.txt").write_text("a charming and moving film\n\nthe worst , most boring mess of the year\n")
    main([f"run_dir={run_dir}", f"input={tmp_path / 'input.txt'}", f"output={tmp_path / 'out.tsv'}"])
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text().splitlines()]
    assert len(rows) == 3 and all(label in ("0", "1") and 0.5 <= float(probability) <= 1 for label, probability in rows)


@pytest.mark.slow
def test_safetensors_export_rebuilds_the_same_model(classifier_run, tmp_path):
    from safetensors.torch import load_model

    import hydra.utils

    run_dir, _ = classifier_run
    output = export(run_dir, "safetensors", tmp_path / "export")
    assert sorted(path.name for path in output.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    config = json.loads((output / "config.json").read_text())
    assert config["label_names"] == ["0", "1"] and config["data"] == {"max_length": 100, "padding": "pre", "truncation": "pre"}
    rebuilt = hydra.utils.instantiate(config["model"])
    load_model(rebuilt, str(output / "model.safetensors"))
    original = load_run(run_dir).task.model
    ids, mask = torch.randint(0, 100, (4, 100)), torch.ones(4, 100, dtype=torch.bool)
    assert torch.equal(rebuilt.eval()(ids, mask), original(ids, mask))
    with pytest.raises(ConfigError, match="already exists"):
        export(run_dir, "safetensors", output)


@pytest.mark.slow
def test_hf_export_loads_in_transformers_with_the_same_logits(lm_run, tmp_path):
    transformers = pytest.importorskip("transformers")

    output = export(lm_run, "hf", tmp_path / "hf")
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(str(output)).eval()
    ours = load_run(lm_run).task.model
    ids = torch.randint(0, ours.config.vocab_size, (2, 32))
    with torch.no_grad():
        difference = (hf_model(ids).logits - ours(ids)).abs().max().item()
    assert difference < 1e-5
    assert (output / "tokenizer.json").is_file()


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
