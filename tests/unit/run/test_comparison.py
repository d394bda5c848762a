"""The comparison command's optional plot."""

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
