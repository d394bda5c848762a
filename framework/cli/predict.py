"""Label each line of a text file with a finished classifier run: ``lmf-predict`` or ``python -m framework.predict``.

    python -m framework.predict run_dir=logs/runs/<run> input=reviews.txt [output=predictions.tsv] [checkpoint=best|last|<file>]

Every line of ``input`` (split on ``\\n`` only) is one text. Each output line is
``<label>\\t<probability>``: the most probable class name (as written in the training file)
and its probability, in input order; to stdout unless ``output`` is given. Texts are encoded
exactly as in training (tokenizer, ``max_length``, padding and truncation sides).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from framework.cli.finished_run import run_finished_run_command
from framework.cli.precheck import CONFIG_DIR, user_errors_exit
from framework.data.sources import read_text_file
from framework.run.inference import predict
from framework.run.loading import load_run


@dataclass
class PredictConfig:
    run_dir: str = "???"  # the finished classifier run's directory
    input: str = "???"  # a text file, one text per line
    output: str | None = None  # a file for the <label>\t<probability> lines; null: stdout
    checkpoint: str = "best"  # best, last or a checkpoint file
    batch_size: int = 256  # texts per forward pass


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def predict_job(cfg: DictConfig) -> None:
    with user_errors_exit():
        lines = read_text_file(Path(cfg.input).expanduser(), kind="Input file", setting="input").split("\n")
        if lines[-1] == "":
            lines.pop()
        predictions = predict(load_run(cfg.run_dir, cfg.checkpoint), lines, cfg.batch_size)
    rendered = "".join(f"{label}\t{probability:.6f}\n" for label, probability in predictions)
    if cfg.output:
        Path(cfg.output).expanduser().write_text(rendered)
    else:
        sys.stdout.write(rendered)


def main() -> None:
    """The console script ``lmf-predict``."""
    run_finished_run_command(predict_job, "predict", PredictConfig)
