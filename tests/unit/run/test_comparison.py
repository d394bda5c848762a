"""The comparison command: its tables and its optional plot."""

import json
import sys
from pathlib import Path

import pytest

from framework.errors import MissingDependencyError
from framework.run.comparison import plot


def test_plotting_without_matplotlib_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'lm-framework\[plot\]'"):
        plot(tmp_path / "curves.png", [], ["val/loss"])
    assert not (tmp_path / "curves.png").exists()


def run(name, config, overrides, losses):
    from framework.run.comparison import Run

    choices = {key: value for key, value in (item.split("=", 1) for item in overrides) if "." not in key}
    overridden = {item.split("=", 1)[0] for item in overrides if "." in item.split("=", 1)[0]}
    history = [{"step": str(step), "val/loss": str(loss)} for step, loss in enumerate(losses, 1)]
    return Run(Path(name), config, history, 1000, 10.0, choices, overridden)


def test_a_swept_group_is_one_column_of_its_options_not_every_key_inside_it():
    from framework.run.comparison import comparison_rows, differing_keys

    gpt = {"model._target_": "GPT", "model.n_embd": 128, "model.n_head": 4, "optimizer.lr": 1e-3, "paths.run_dir": "a"}
    lstm = {"model._target_": "LSTM", "model.n_embd": 256, "model.hidden_size": 256, "optimizer.lr": 3e-3, "paths.run_dir": "b"}
    runs = [
        run("0", gpt, ["model=gpt", "optimizer.lr=1e-3"], [3.0, 2.5]),
        run("1", lstm, ["model=lstm", "optimizer.lr=3e-3", "model.n_embd=256"], [3.0, 2.0]),
    ]
    assert differing_keys(runs) == ["model", "model.n_embd", "optimizer.lr"]
    header, rows = comparison_rows(runs, "val/loss", wide=False)
    assert header == ["run", "model", "model.n_embd", "optimizer.lr", "final val/loss", "best val/loss", "wall s"]
    assert rows == [["1", "lstm", "256", "0.003", "2.0000", "2.0000", "10"], ["0", "gpt", "128", "0.001", "2.5000", "2.5000", "10"]]


def test_sorting_by_a_metric_no_run_logged_is_refused_naming_what_they_logged():
    from framework.errors import ConfigError
    from framework.run.comparison import comparison_rows

    runs = [run("0", {"optimizer.lr": 1e-3}, ["optimizer.lr=1e-3"], [3.0]), run("1", {"optimizer.lr": 3e-3}, ["optimizer.lr=3e-3"], [2.0])]
    with pytest.raises(ConfigError, match="--sort val/accc: none of the runs logged that metric; they logged val/loss."):
        comparison_rows(runs, "val/accc")


def test_runs_of_different_recipes_show_the_groups_their_records_chose_and_fit_the_width(tmp_path):
    from framework.run.comparison import comparison_rows, find_runs, fit_width

    recipes = {
        "char": ({"experiment": "shakespeare_char", "data": "tinyshakespeare", "tokenizer": "char"}, 1e-3, 1.9),
        "lstm": ({"experiment": None, "data": "stdlib", "tokenizer": "bpe"}, 3e-3, 5.0),
    }
    for name, (choices, lr, loss) in recipes.items():
        (tmp_path / name).mkdir()
        record = {"overrides": [f"optimizer.lr={lr}"], "choices": choices, "config": {"optimizer": {"lr": lr}, "seed": 1}}
        (tmp_path / name / "run.json").write_text(json.dumps(record))
        (tmp_path / name / "metrics.csv").write_text(f"step,val/loss\n10,{loss}\n")
    header, rows = comparison_rows(find_runs([tmp_path / "char", tmp_path / "lstm"]), "val/loss", wide=False)
    assert header == ["run", "data", "experiment", "tokenizer", "optimizer.lr", "final val/loss", "best val/loss", "wall s"]
    assert rows[1] == ["lstm", "stdlib", "null", "bpe", "0.003", "5.0000", "5.0000", "-"]
    # run 5 + data 18 + experiment 19 + tokenizer 12 + optimizer.lr 15 + 11 + 11 + 9, and 1 for the border: 101
    assert fit_width(header, rows, 101)[0] == header
    assert fit_width(header, rows, 100)[0] == ["run", "data", "experiment", "tokenizer", "final val/loss", "best val/loss", "wall s"]
    assert fit_width(header, rows, 60)[0] == ["run", "data", "final val/loss", "best val/loss", "wall s"]
    assert fit_width(header, rows, 60)[1][0] == ["char", "tinyshakespeare", "1.9000", "1.9000", "-"]


def test_the_jobs_of_one_sweep_are_shown_by_number():
    from framework.run.comparison import comparison_rows

    runs = [
        run(f"sweep/{job}_optimizer.lr={lr}", {"optimizer.lr": lr}, [f"optimizer.lr={lr}"], [loss])
        for job, lr, loss in ((0, 1e-3, 3.0), (1, 3e-3, 2.0))
    ]
    header, rows = comparison_rows(runs, "val/loss", wide=False)
    assert header[0] == "job" and [row[:2] for row in rows] == [["1", "0.003"], ["0", "0.001"]]
    assert comparison_rows(runs, "val/loss", wide=True)[1][0][0] == "1_optimizer.lr=0.003"


def test_a_run_recorded_without_choices_leaves_the_groups_out_and_keeps_the_keys_that_differ(tmp_path):
    from framework.run.comparison import comparison_rows, find_runs

    for name, lr, record_choices in (("old", 1e-3, None), ("new", 3e-3, {"model": "gpt", "data": "stdlib", "experiment": None})):
        (tmp_path / name).mkdir()
        record = {"overrides": [f"optimizer.lr={lr}"], "config": {"optimizer": {"lr": lr}}}
        record |= {"choices": record_choices} if record_choices else {}
        (tmp_path / name / "run.json").write_text(json.dumps(record))
        (tmp_path / name / "metrics.csv").write_text("step,val/loss\n10,3.0\n")
    header, _ = comparison_rows(find_runs([tmp_path / "old", tmp_path / "new"]), "val/loss", wide=False)
    assert header == ["run", "optimizer.lr", "final val/loss", "best val/loss", "wall s"]


def write_run(folder: Path, vocab_size: int, losses: dict[str, float]) -> Path:
    folder.mkdir(parents=True)
    record = {"overrides": [], "choices": {"tokenizer": f"bpe{vocab_size}"}, "config": {"model": {"vocab_size": vocab_size}}}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "metrics.csv").write_text("step," + ",".join(losses) + "\n10," + ",".join(map(str, losses.values())) + "\n")
    return folder


def test_runs_with_different_vocabularies_sorted_per_token_get_a_note_that_names_val_bpb(tmp_path):
    from framework.run.comparison import find_runs, tokenizer_note

    char = write_run(tmp_path / "char", 66, {"val/loss": 1.5, "val/bpb": 2.2})
    bpe = write_run(tmp_path / "bpe", 4096, {"val/loss": 5.0, "val/bpb": 2.1})
    same = write_run(tmp_path / "bpe_again", 4096, {"val/loss": 5.1, "val/bpb": 2.15})
    runs = find_runs([char, bpe])
    assert tokenizer_note(runs, "val/loss") == (
        "The runs have different tokenizers (model.vocab_size), so val/loss, per token, does not rank them; "
        "val/bpb, per byte, does: --sort val/bpb."
    )
    assert tokenizer_note(runs, "val/bpb") is None and tokenizer_note(find_runs([bpe, same]), "val/loss") is None


def test_the_wide_table_keeps_each_run_on_one_line_however_narrow_the_terminal(tmp_path, capsys, monkeypatch):
    from framework.cli.compare import main

    monkeypatch.setenv("COLUMNS", "40")
    names = ["a_run_with_a_long_directory_name", "another_run_with_a_long_name"]
    for name, loss in zip(names, (3.0, 2.0)):
        write_run(tmp_path / name, 4096, {"val/loss": loss, "val/bpb": loss / 2})
    main([str(tmp_path), "--wide"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == names[::-1]
