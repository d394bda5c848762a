"""Samples and the summary printed at the end of a training run."""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from tokenizers import Tokenizer
from torch import nn

from framework.models import generate


def sample_text(
    model: nn.Module, tokenizer: Tokenizer, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None, seed: int
) -> str:
    """Decode one sample of ``max_new_tokens`` tokens continuing ``prompt``, on CPU, seeded."""
    model = model.cpu()
    generator = torch.Generator().manual_seed(seed)
    ids = generate(
        model,
        torch.tensor([tokenizer.encode(prompt).ids]),
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        context_size=getattr(model, "block_size", None),
        generator=generator,
    )
    return tokenizer.decode(ids[0].tolist(), skip_special_tokens=False)


def print_summary(run_dir: Path, step: int, metrics: dict[str, float], checkpoints: dict[str, str | None], sample: str, console: Console | None = None) -> None:
    """Print the final metrics, checkpoint paths, the sample and how to look at the run."""
    console = console or Console()
    table = Table(title=f"Run finished at step {step}", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in sorted(metrics.items()):
        table.add_row(name, f"{value:.4f}")
    for name, path in checkpoints.items():
        table.add_row(f"{name} checkpoint", str(path))
    table.add_row("run directory", str(run_dir))
    console.print(table)
    console.print(Panel(sample, title="sample", expand=False))
    hints = [f"metrics: {run_dir / 'metrics.csv'}"]
    wandb_dirs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if wandb_dirs:
        hints += [f"browse:  wandb leet {wandb_dirs[-1]}", f"upload:  wandb sync {wandb_dirs[-1]}"]
    console.print("\n".join(hints), soft_wrap=True)
