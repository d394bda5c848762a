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


def sample_texts(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_samples: int = 1,
    seed: int = 1337,
) -> list[str]:
    """``num_samples`` decoded continuations of ``prompt`` (prompt included), seeded.

    The model runs where its parameters are (also sharded); tokens are drawn on CPU. A model
    with a ``block_size`` sees at most its last ``block_size`` tokens; a longer prompt is
    cropped from the front. Sampling follows :func:`framework.models.generate`.

    Raises:
        ValueError: a prompt with no tokens, ``num_samples < 1``, ``max_new_tokens < 0`` or a
            sampling setting out of range.
    """
    prompt_ids = tokenizer.encode(prompt).ids
    context_size = getattr(model, "block_size", None)
    if context_size is not None:
        prompt_ids = prompt_ids[-context_size:]
    if num_samples < 1 or max_new_tokens < 0:
        raise ValueError(f"num_samples={num_samples} must be at least 1 and max_new_tokens={max_new_tokens} at least 0.")
    device = next(model.parameters()).device
    # A compiled model (model.compile=true) runs eagerly here: every new length would otherwise
    # be compiled anew, and one sample is too few forwards to repay it.
    with torch.compiler.set_stance("force_eager"):
        ids = generate(
            model,
            torch.tensor([prompt_ids] * num_samples, dtype=torch.long, device=device).reshape(num_samples, len(prompt_ids)),
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            context_size=context_size,
            generator=torch.Generator().manual_seed(seed),
        )
    return [tokenizer.decode(row.tolist(), skip_special_tokens=False) for row in ids]


def print_summary(
    run_dir: Path,
    step: int,
    metrics: dict[str, float],
    checkpoints: dict[str, str | None],
    sample: str | None,
    console: Console | None = None,
    prompt: str | None = None,
) -> None:
    """Print the final metrics, checkpoint paths, the sample (if the task makes one; titled with
    its ``prompt``) and how to look at the run."""
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
    if sample is not None:
        console.print(Panel(sample, title="sample" if prompt is None else f"sample, prompt {prompt!r}", expand=False))
    hints = [f"metrics: {run_dir / 'metrics.csv'}"]
    wandb_dirs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if wandb_dirs:
        hints += [f"browse:  wandb leet {wandb_dirs[-1]}", f"upload:  wandb sync {wandb_dirs[-1]}"]
    console.print("\n".join(hints), soft_wrap=True)
