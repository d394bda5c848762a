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
    top_p: float | None = None,
    context_size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend ``idx`` by ``max_new_tokens`` sampled tokens.

    Each step feeds the last ``context_size`` tokens (all of them when None) through ``model``,
    divides the final logits by ``temperature``, keeps the ``top_k`` largest (Fan et al., 2018),
    then the smallest set of most likely tokens whose probability reaches ``top_p`` (nucleus
    sampling, Holtzman et al., 2020), and samples from the renormalised softmax.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits.
        idx: ``(B, T0)`` int64 prompt ids, ``T0 >= 1``.
        max_new_tokens: tokens to append.
        temperature: > 0; lower is greedier.
        top_k: sample among the k most likely tokens only; None keeps all.
        top_p: in (0, 1]; sample within the nucleus of this probability mass; None keeps all.
        context_size: longest context given to the model (a GPT's ``block_size``).
        generator: a CPU generator, for reproducible samples (sampling runs on CPU).

    Returns:
        ``(B, T0 + max_new_tokens)`` int64 ids.

    Raises:
        ValueError: on an empty prompt, ``temperature <= 0``, ``top_k < 1`` or ``top_p`` outside (0, 1].
    """
    if idx.shape[1] == 0:
        raise ValueError("generate() needs a prompt of at least one token.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k} must be None or at least 1.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be None or in (0, 1].")
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        context = idx if context_size is None else idx[:, -context_size:]
        # sampled on CPU, so the generator is a CPU one whatever device (or sharding) the model uses
        logits = model(context)[:, -1, :].float().cpu() / temperature
        if top_k is not None:
            kth_largest = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))
        if top_p is not None:
            logits = nucleus(logits, top_p)
        next_id = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=generator)
        idx = torch.cat((idx, next_id.to(idx.device)), dim=1)
    model.train(was_training)
    return idx


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """(B, V) logits with every token outside the top-``top_p`` nucleus set to -inf.

    The nucleus is the most likely tokens, in order, up to and including the first one at which
    their cumulative probability reaches ``top_p``; the most likely token is always kept.
    """
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    outside = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before this token already reaches top_p
    sorted_logits = sorted_logits.masked_fill(outside, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
