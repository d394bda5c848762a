import itertools

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from framework.cli.wandb_sweep import main


def sample_values(spec):
    """Values a W&B agent could pass for one parameter: its choices, or both ends of its range."""
    return spec["values"] if "values" in spec else [spec["min"], spec["max"]]


def test_wandb_sweep_yaml_round_trips_into_valid_hydra_overrides(tmp_path, checked_config):
    out = tmp_path / "sweep.yaml"
    main(["optuna", "--out", str(out)])
    sweep = yaml.safe_load(out.read_text())
    assert sweep["method"] == "bayes" and sweep["run_cap"] == 20
    assert sweep["metric"] == {"name": "val/loss", "goal": "minimize"}
    assert sweep["parameters"]["optimizer.lr"] == {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
    assert sweep["parameters"]["model.n_layer"] == {"values": [2, 4, 6]}
    assert sweep["command"][-1] == "${args_no_hyphens}" and sweep["command"][2:4] == ["-m", "framework.train"]

    keys = list(sweep["parameters"])
    for values in itertools.islice(itertools.product(*(sample_values(sweep["parameters"][key]) for key in keys)), 12):
        # what ${args_no_hyphens} expands to: key=value pairs
        arguments = [f"{key}={value}" for key, value in zip(keys, values)]
        parsed = OverridesParser.create().parse_overrides(arguments)
        assert [override.key_or_group for override in parsed] == keys
        checked_config(arguments)  # composes and passes every config check
