"""Label each line of a text file with a trained classifier.

    python -m framework.predict run_dir=logs/runs/<run> input=reviews.txt [output=predictions.tsv] [checkpoint=best|last|<file>]

Every line of ``input`` (split on ``\\n`` only) is one text. Each output line is
``<label>\\t<probability>``: the most probable class name (as written in the training file)
and its probability, in input order; to stdout unless ``output`` is given. Texts are encoded
exactly as in training (tokenizer, ``max_length``, padding and truncation sides).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from framework.cli import user_errors_exit
from framework.data.labelled import encode_padded, pad_id
from framework.data.sources import read_text_file
from framework.errors import ConfigError
from framework.loading import LoadedRun, load_run, parse_arguments
from framework.tasks import ClassificationTask

SETTINGS = {"run_dir": (str, None), "input": (str, None), "output": (str, None), "checkpoint": (str, "best"), "batch_size": (int, 256)}


@torch.no_grad()
def predict(run: LoadedRun, texts: list[str], batch_size: int = 256) -> list[tuple[str, float]]:
    """``(label, probability)`` of the most probable class for each text.

    Raises:
        ConfigError: the run is not a classifier.
    """
    if not isinstance(run.task, ClassificationTask):
        raise ConfigError(f"{run.run_dir} is a {type(run.task).__name__} run; prediction needs a classifier (use framework.generate for language models).")
    data = run.config.data
    ids, mask = encode_padded(run.tokenizer, texts, data.max_length, data.padding, data.truncation, pad_id(run.tokenizer))
    predictions = []
    for start in range(0, len(texts), batch_size):
        probabilities = run.task(torch.from_numpy(ids[start : start + batch_size]), torch.from_numpy(mask[start : start + batch_size]))
        best, classes = probabilities.max(dim=1)
        predictions += [(run.label_names[index], probability) for index, probability in zip(classes.tolist(), best.tolist())]
    return predictions


def main(arguments: list[str] | None = None) -> list[tuple[str, float]]:
    with user_errors_exit():
        settings, data_overrides = parse_arguments(sys.argv[1:] if arguments is None else arguments, SETTINGS, required=("run_dir", "input"), usage=__doc__)
        if data_overrides:
            raise ConfigError(f"framework.predict takes no data overrides ({', '.join(data_overrides)}); it encodes as in training.")
        if settings["batch_size"] < 1:
            raise ConfigError(f"batch_size={settings['batch_size']} must be at least 1.")
        text = read_text_file(Path(settings["input"]).expanduser(), kind="Input file", setting="input")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        run = load_run(settings["run_dir"], settings["checkpoint"])
        predictions = predict(run, lines, settings["batch_size"])
    rendered = "".join(f"{label}\t{probability:.6f}\n" for label, probability in predictions)
    if settings["output"]:
        Path(settings["output"]).write_text(rendered)
    else:
        sys.stdout.write(rendered)
    return predictions


if __name__ == "__main__":
    main()
