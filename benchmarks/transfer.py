"""Does pretraining help? The protocol of docs/tutorials/pretraining-and-fine-tuning.md, run and summarised.

    python benchmarks/transfer.py --sst2 ../shared/data/sst2 [--out runs/transfer] [--seeds 1 2 3]

1. ``experiment=sst2_mlm_pretrain`` once (``<out>/pretrain``), unless ``--pretrain-run`` names a
   finished one.
2. ``experiment=sst2_finetune`` for every combination of: pretrained or from scratch
   (``model.init_from=null``), 1,000 labelled training sentences or all of them, and each seed;
   every run uses the pretraining run's tokenizer (``tokenizer=file``), so the two arms differ
   in the initial weights only. Finished runs are not run again.
3. Prints, per arm, the dev accuracy at the last step (mean ± sample standard deviation over
   the seeds, and each seed's), the pretraining's final ``val/mlm_acc``, and the commands to
   draw the learning curves with ``framework.compare``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SUBSETS = {"1000": ["data.train_examples=1000"], "all": []}


def train(arguments: list[str], run_dir: Path) -> None:
    """``python -m framework.train <arguments>`` into ``run_dir`` (a finished run returns at once)."""
    command = [sys.executable, "-m", "framework.train", *arguments, "logger=csv", f"hydra.run.dir={run_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL)


def last_value(run_dir: Path, metric: str) -> tuple[int, float]:
    """The last logged ``(step, value)`` of ``metric`` in ``run_dir/metrics.csv``."""
    with (run_dir / "metrics.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row.get(metric)]
    return int(rows[-1]["step"]), float(rows[-1][metric])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", type=Path, required=True, help="the SST-2 folder (train.tsv, dev.tsv)")
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"), help="where the runs go")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-run", type=Path, help="a finished experiment=sst2_mlm_pretrain run to fine-tune")
    options = parser.parse_args()
    sst2, out = options.sst2.resolve(), options.out.resolve()
    pretrain = options.pretrain_run.resolve() if options.pretrain_run else out / "pretrain"
    if not options.pretrain_run:
        train(["experiment=sst2_mlm_pretrain", f"data.path={sst2}"], pretrain)
    shared = ["experiment=sst2_finetune", f"data.path={sst2}", "tokenizer=file", f"tokenizer.path={pretrain / 'tokenizer.json'}"]
    results: dict[tuple[str, str], list[float]] = {}
    for subset, subset_overrides in SUBSETS.items():
        for arm, init in (("pretrained", str(pretrain)), ("scratch", "null")):
            for seed in options.seeds:
                run_dir = out / f"{subset}-{arm}-seed{seed}"
                train([*shared, *subset_overrides, f"model.init_from={init}", f"seed={seed}"], run_dir)
                results.setdefault((subset, arm), []).append(last_value(run_dir, "val/acc")[1])
    step, mlm_accuracy = last_value(pretrain, "val/mlm_acc")
    print(f"\npretraining: val/mlm_acc {mlm_accuracy:.4f} at step {step} ({pretrain})")
    print("\n| labelled sentences | pretrained | from scratch | difference |\n|---|---|---|---|")
    for subset in SUBSETS:
        cells = []
        for arm in ("pretrained", "scratch"):
            values = results[(subset, arm)]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f} ({', '.join(f'{value:.4f}' for value in values)})")
        gain = statistics.mean(results[(subset, "pretrained")]) - statistics.mean(results[(subset, "scratch")])
        print(f"| {subset} | {cells[0]} | {cells[1]} | {gain:+.4f} |")
    print(f"\ncurves: python -m framework.compare {out}/1000-* --plot curves-1000.png --metric val/acc --metric train/loss --sort val/acc")
    print(f"        python -m framework.compare {out}/all-* --plot curves-all.png --metric val/acc --metric train/loss --sort val/acc")


if __name__ == "__main__":
    main()
