"""Prepare a corpus for training: ``lmf-prepare`` or ``python -m framework.prepare``.

    python -m framework.prepare input.path='corpus/*.jsonl.gz' [prepare/filters=[clean,length,c4]] \\
      [prepare/dedup=exact|minhash|none] [tokenizer=bpe|char|word] [prepare/executor=local|ray|slurm] [output.dir=<folder>]

Composes ``conf/prepare.yaml`` (``--help``, ``--cfg job``), runs the stages on datatrove's
executor, prints a table of what each step kept and removed, and the dataset folder to train
on with ``data=prepared data.path=<folder>`` (with Slurm: submits the stages and says where the
dataset will be). Bad settings, input and failed tasks exit with status 2 and one paragraph.
"""

from __future__ import annotations

import os
import sys

# datatrove's progress bars (tqdm, which reads this when first imported, here and in the worker
# processes) would interleave with the stages' progress lines; set before the imports below.
os.environ.setdefault("TQDM_DISABLE", "1")

import hydra
from omegaconf import DictConfig

from framework.cli.precheck import CONFIG_DIR, run_command, user_errors_exit
from framework.cli.process import configure_process
from framework.prepare.pipeline import prepare
from framework.prepare.report import print_progress, print_report, print_stage


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="prepare")
def prepare_job(cfg: DictConfig) -> None:
    stages_run = []
    with user_errors_exit():
        prepared = prepare(cfg, lambda *stage: (stages_run.append(stage), print_stage(*stage)), print_progress)
    if prepared.finished and not stages_run:
        print("Already prepared with these settings and inputs: nothing to run.", file=sys.stderr)
    print_report(prepared)


def main() -> None:
    """The console script ``lmf-prepare``."""
    configure_process()
    run_command(prepare_job, "prepare")
