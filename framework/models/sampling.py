"""Autoregressive sampling shared by every language model."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    context_size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend ``idx`` by ``max_new_tokens`` sampled tokens.

    Each step feeds the last ``context_size`` tokens (all of them when None) through ``model``,
    divides the final logits by ``temperature``, keeps the ``top_k`` largest (Fan et al., 2018)
    and samples from the softmax.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits.
        idx: ``(B, T0)`` int64 prompt ids, ``T0 >= 1``.
        max_new_tokens: tokens to append.
        temperature: > 0; lower is greedier.
        top_k: sample among the k most likely tokens only; None keeps all.
        context_size: longest context given to the model (a GPT's ``block_size``).
        generator: source of randomness, for reproducible samples.

    Returns:
        ``(B, T0 + max_new_tokens)`` int64 ids.

    Raises:
        ValueError: on an empty prompt, ``temperature <= 0`` or ``top_k < 1``.
    """
    if idx.shape[1] == 0:
        raise ValueError("generate() needs a prompt of at least one token.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k} must be None or at least 1.")
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        context = idx if context_size is None else idx[:, -context_size:]
        logits = model(context)[:, -1, :].float() / temperature
        if top_k is not None:
            kth_largest = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))
        next_id = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=generator)
        idx = torch.cat((idx, next_id), dim=1)
    model.train(was_training)
    return idx
