"""The summary printed at the end of a training run."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from framework.models import generate
from framework.training import TrainingResult


def sample_text(result: TrainingResult, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None, seed: int) -> str:
    """Decode one sample of ``max_new_tokens`` tokens continuing ``prompt`` from the trained model."""
    tokenizer = result.corpus.tokenizer
    prompt_ids = tokenizer.encode(prompt).ids
    model = result.task.model.cpu()
    generator = torch.Generator().manual_seed(seed)
    ids = generate(
        model,
        torch.tensor([prompt_ids]),
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        context_size=getattr(model, "block_size", None),
        generator=generator,
    )
    return tokenizer.decode(ids[0].tolist(), skip_special_tokens=False)


def print_summary(result: TrainingResult, sample: str, console: Console | None = None) -> None:
    """Print the final metrics, checkpoint paths, the sample and how to look at the run."""
    console = console or Console()
    table = Table(title=f"Run finished at step {result.trainer.global_step}", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in sorted(result.metrics.items()):
        table.add_row(name, f"{value:.4f}")
    table.add_row("best checkpoint", str(result.best_checkpoint))
    table.add_row("last checkpoint", str(result.last_checkpoint))
    table.add_row("run directory", str(result.run_dir))
    console.print(table)
    console.print(Panel(sample, title="sample", expand=False))
    hints = [f"metrics: {result.run_dir / 'metrics.csv'}"]
    wandb_dirs = sorted((result.run_dir / "wandb").glob("offline-run-*"))
    if wandb_dirs:
        hints += [f"browse:  wandb leet {wandb_dirs[-1]}", f"upload:  wandb sync {wandb_dirs[-1]}"]
    console.print("\n".join(hints), soft_wrap=True)
