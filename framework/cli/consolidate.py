"""Turn a sharded (FSDP) checkpoint directory into one checkpoint file.

    lmf-consolidate <run_dir>/checkpoints/last.ckpt [--output FILE]     (or python -m framework.consolidate)

The output defaults to ``<name>-consolidated.ckpt`` beside the directory (``last.ckpt`` ->
``last-consolidated.ckpt``). Bad input exits with status 2 and one paragraph.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from framework.checkpointing.sharded import consolidate, consolidated_path
from framework.cli.precheck import user_errors_exit
from framework.cli.usage import epilog
from framework.errors import UserInputError


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``lmf-consolidate`` (its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m framework.consolidate",
        description=__doc__.split("\n\n")[0],
        epilog=epilog("consolidate", ("python -m framework.consolidate logs/runs/mine/checkpoints/last.ckpt",)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="a sharded checkpoint directory")
    parser.add_argument("--output", type=Path, default=None, help="the single-file checkpoint to write")
    return parser


def main(arguments: list[str] | None = None) -> None:
    """The console script ``lmf-consolidate``."""
    parsed = build_parser().parse_args(arguments)
    output = parsed.output or consolidated_path(parsed.checkpoint)
    with user_errors_exit():
        try:
            written = consolidate(parsed.checkpoint, output)
        except FileExistsError as error:
            raise UserInputError(str(error)) from None
    print(f"Wrote {written}")
