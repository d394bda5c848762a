"""A minimal plain-PyTorch training loop: the reference the framework's speed is measured against.

Not a product path. It trains the same GPT on the same kind of windows as
``experiment=shakespeare_char`` (random offsets into the token array, batch 12 x block 64),
with AdamW over the same two parameter groups, the warmup + cosine multiplier, gradient
clipping at 1.0 and ``zero_grad(set_to_none=True)``, the way nanoGPT's ``train.py`` does on
CPU, and nothing else: no logging, no checkpoints, no validation.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from framework.models import GPT
from framework.optim.optimizer import parameter_groups
from framework.optim.scheduler import warmup_cosine_multiplier

# What each step's wall time is split into: window gathering and the learning rate; forward
# pass with the loss; backward pass; gradient clipping; optimizer step with zero_grad.
PHASES = ("data", "forward", "backward", "clip", "optimizer")


def plain_steps(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    tokens: np.ndarray,
    steps: int,
    first_step: int,
    batch_size: int = 12,
    block_size: int = 64,
    max_steps: int = 2000,
    warmup_steps: int = 100,
    min_ratio: float = 0.1,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train ``steps`` optimizer steps from step ``first_step``; return each step's wall seconds
    per phase of :data:`PHASES` (their sum is the step's time)."""
    generator = np.random.default_rng(seed + first_step)
    base_rates = [group["initial_lr"] for group in optimizer.param_groups]
    seconds = []
    for step in range(first_step, first_step + steps):
        marks = [time.perf_counter()]
        offsets = generator.integers(len(tokens) - block_size, size=batch_size)
        window = torch.from_numpy(np.stack([tokens[offset : offset + block_size + 1] for offset in offsets]).astype(np.int64))
        x, y = window[:, :-1], window[:, 1:]
        multiplier = warmup_cosine_multiplier(step, warmup_steps, max_steps, min_ratio)
        for group, base in zip(optimizer.param_groups, base_rates):
            group["lr"] = base * multiplier
        marks.append(time.perf_counter())
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        marks.append(time.perf_counter())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        seconds.append({phase: end - start for phase, start, end in zip(PHASES, marks, marks[1:])})
    return seconds


def plain_setup(vocab_size: int, seed: int = 1337, **optimizer_options) -> tuple[GPT, torch.optim.Optimizer]:
    """The shakespeare_char GPT and its AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on
    matrices; ``optimizer_options`` such as ``fused`` passed on)."""
    torch.manual_seed(seed)
    model = GPT(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.99), **optimizer_options)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return model, optimizer
