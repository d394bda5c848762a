"""Muon against AdamW on two recipes: learning-rate sweeps, then val/loss at equal steps and at
equal training time.

    python benchmarks/muon.py --shakespeare ../shared/data/tinyshakespeare/input.txt [--out runs/muon]

For each recipe (``experiment=shakespeare_char`` and the default GPT):

1. The sweeps, one directory per run under ``--out`` (a finished run is not run again); as one
   command each:

       python -m framework.train -m <recipe> optimizer=adamw optimizer.lr=<AdamW grid>
       python -m framework.train -m <recipe> optimizer=muon optimizer.muon.lr=<Muon grid>

   (with Muon, embeddings, head, norms and biases stay with AdamW at the recipe's rate). Each
   optimizer's best rate is the one with the lowest final val/loss.
2. Training time per step of the two best runs, measured apart from the sweep: ``--rounds``
   rounds of ``--timing-steps`` steps each, AdamW and Muon in turn, the median of each run's
   logged ``perf/tokens_per_sec`` (validation and start-up left out); the median over rounds.
3. The faster optimizer trained for as many steps as the slower one's whole run takes
   (its schedule stretched to them): val/loss at equal training time.

Prints one table per recipe and the ``framework.compare`` command that draws the curves.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
MUON_GRID = [0.005, 0.01, 0.02, 0.04]
RECIPES = {
    # the recipe's own AdamW rate, its AdamW grid, steps, tokens per optimizer step (batch x block)
    "shakespeare_char": {"lr": 1e-3, "grid": [5e-4, 1e-3, 2e-3, 4e-3, 8e-3], "max_steps": 2000, "tokens_per_step": 12 * 64},
    "default": {"lr": 1e-3, "grid": [1e-3, 2e-3, 4e-3, 8e-3], "max_steps": 600, "tokens_per_step": 16 * 128},
}


def train(arguments: list[str], run_dir: Path) -> Path:
    """``python -m framework.train <arguments>`` into ``run_dir`` unless it finished before."""
    record = run_dir / "run.json"
    if record.exists() and '"status": "finished"' in record.read_text():
        return run_dir
    command = [sys.executable, "-m", "framework.train", *arguments, "logger=csv", "callbacks.progress=null", f"hydra.run.dir={run_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run_dir


def column(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every logged ``metric`` in ``run_dir/metrics.csv``."""
    with (run_dir / "metrics.csv").open() as file:
        return [(int(row["step"]), float(row[metric])) for row in csv.DictReader(file) if row.get(metric)]


def final_loss(run_dir: Path) -> float:
    return column(run_dir, "val/loss")[-1][1]


def optimizer_overrides(name: str, lr: float, recipe_lr: float) -> list[str]:
    return (
        [f"optimizer={name}", f"optimizer.lr={lr}"]
        if name == "adamw"
        else [f"optimizer={name}", f"optimizer.lr={recipe_lr}", f"optimizer.muon.lr={lr}"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shakespeare", type=Path, required=True, help="Tiny Shakespeare's input.txt")
    parser.add_argument("--out", type=Path, default=Path("runs/muon"), help="where the runs go")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds")
    parser.add_argument("--timing-steps", type=int, default=200, help="steps of each timing run")
    options = parser.parse_args()
    out = options.out.resolve()
    bases = {"shakespeare_char": ["experiment=shakespeare_char", f"data.path={options.shakespeare.resolve()}"], "default": []}
    for recipe, settings in RECIPES.items():
        base, grids = bases[recipe], {"adamw": settings["grid"], "muon": MUON_GRID}
        runs = {
            name: {lr: train([*base, *optimizer_overrides(name, lr, settings["lr"])], out / recipe / f"{name}-lr{lr:g}") for lr in grid}
            for name, grid in grids.items()
        }
        best = {name: min(by_lr, key=lambda lr: final_loss(by_lr[lr])) for name, by_lr in runs.items()}
        seconds = {name: [] for name in runs}
        for round_index in range(options.rounds):
            for name in runs:
                timing_run = out / recipe / "timing" / f"{name}-round{round_index}"
                steps = [
                    f"trainer.max_steps={options.timing_steps}",
                    f"trainer.val_check_interval={options.timing_steps}",
                    "trainer.limit_val_batches=1",
                ]
                train([*base, *optimizer_overrides(name, best[name], settings["lr"]), *steps, "sample.max_new_tokens=0"], timing_run)
                tokens_per_second = statistics.median(value for _, value in column(timing_run, "perf/tokens_per_sec"))
                seconds[name].append(settings["tokens_per_step"] / tokens_per_second)
        per_step = {name: statistics.median(values) for name, values in seconds.items()}
        slower, faster = max(per_step, key=per_step.get), min(per_step, key=per_step.get)
        equal_steps = round(settings["max_steps"] * per_step[slower] / per_step[faster])
        equal_time = train(
            [*base, *optimizer_overrides(faster, best[faster], settings["lr"]), f"trainer.max_steps={equal_steps}"],
            out / recipe / f"{faster}-lr{best[faster]:g}-steps{equal_steps}",
        )
        print(f"\n## {recipe} ({settings['max_steps']} steps)\n\n| optimizer | lr | val/loss at the last step |\n|---|---|---|")
        for name, by_lr in runs.items():
            for lr, run_dir in by_lr.items():
                print(f"| {name} | {lr:g} | {final_loss(run_dir):.4f}{' (best)' if lr == best[name] else ''} |")
        print(
            f"\ntraining time per step (median of {options.rounds} rounds of {options.timing_steps} steps): adamw "
            f"{per_step['adamw'] * 1000:.1f} ms, muon {per_step['muon'] * 1000:.1f} ms (rounds: "
            f"{', '.join(f'{value * 1000:.1f}' for value in seconds['adamw'])} / {', '.join(f'{value * 1000:.1f}' for value in seconds['muon'])}); "
            f"muon / adamw = {per_step['muon'] / per_step['adamw']:.3f}"
        )
        print(
            f"equal steps: adamw {final_loss(runs['adamw'][best['adamw']]):.4f}, muon {final_loss(runs['muon'][best['muon']]):.4f}; "
            f"equal time: {faster} for {equal_steps} steps {final_loss(equal_time):.4f} against {slower}'s {settings['max_steps']} steps "
            f"{final_loss(runs[slower][best[slower]]):.4f}"
        )
        curves = " ".join(str(runs[name][best[name]]) for name in ("adamw", "muon"))
        print(f"curves: python -m framework.compare {curves} {equal_time} --plot {out / recipe}-curves.png")


if __name__ == "__main__":
    main()
