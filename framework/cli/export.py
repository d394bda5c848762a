"""Export a finished run's model: ``lmf-export`` or ``python -m framework.export``.

    python -m framework.export run_dir=logs/runs/<run> format=safetensors|hf [output=<dir>] [checkpoint=best|last|<file>]

``format=safetensors`` writes ``model.safetensors``, ``config.json`` and ``tokenizer.json``;
``format=hf`` (GPT runs) a Hugging Face ``transformers`` GPT-2 directory (``framework.run.export``).
The output directory defaults to ``<run_dir>/export-<format>`` and must not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import hydra
from omegaconf import DictConfig

from framework.cli.finished_run import run_finished_run_command
from framework.cli.precheck import CONFIG_DIR, user_errors_exit
from framework.run.export import export


@dataclass
class ExportConfig:
    run_dir: str = "???"  # the finished run's directory
    format: str = "safetensors"  # safetensors or hf
    output: str | None = None  # a directory that does not exist yet; null: <run_dir>/export-<format>
    checkpoint: str = "best"  # best, last or a checkpoint file


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def export_job(cfg: DictConfig) -> None:
    with user_errors_exit():
        written = export(cfg.run_dir, cfg.format, cfg.output, cfg.checkpoint)
    print(f"Wrote {written}")


def main() -> None:
    """The console script ``lmf-export``."""
    run_finished_run_command(export_job, "export", ExportConfig)
