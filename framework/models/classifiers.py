"""Sequence classifiers over padded token ids: an LSTM and a Transformer encoder.

Both read ``(ids, mask)``: ``ids`` (B, T) int64 and ``mask`` (B, T) bool, True on real tokens,
which are contiguous (padding before them or after them). Padding never changes a prediction:
a padded batch gives the same logits as each example alone without padding.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from framework.errors import ConfigError
from framework.models.flops import attention_flops, multiplying_parameters
from framework.models.gpt import Block, GPTConfig, decode, decoder_body, init_gpt2_weights, layer_depths


def leading_padding(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool -> (B,) int64: the number of padding positions before each first real token."""
    return (~mask).long().cumprod(dim=1).sum(dim=1)


def left_aligned(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real tokens to the front: ``(ids (B, T), lengths (B,))``."""
    T = ids.size(1)
    index = (torch.arange(T, device=ids.device)[None, :] + leading_padding(mask)[:, None]) % T
    return ids.gather(1, index), mask.sum(dim=1)


class LSTMClassifier(nn.Module):
    """Embedding -> LSTM -> linear head on the last real token's hidden state.

    The classic sentiment recipe (embedding 16, LSTM 128, one sigmoid output); sequences are
    packed (``pack_padded_sequence``) so padding never enters the recurrence, whichever side it
    is on.

    Args:
        vocab_size: embedding rows (the pad id included).
        num_outputs: 1 for a binary logit (sigmoid/BCE), else one logit per class (softmax).
        n_embd: embedding width. hidden_size: LSTM state width. n_layer: stacked LSTM layers.
        dropout: on the embeddings, between LSTM layers and before the head.
        bidirectional: read both directions and concatenate the final states.

    Output: logits (B, num_outputs) float32.

    Raises:
        ConfigError: non-positive sizes or dropout outside [0, 1).
    """

    TASK_KIND = "classification"

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        n_embd: int = 16,
        hidden_size: int = 128,
        n_layer: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        check_sizes(vocab_size=vocab_size, num_outputs=num_outputs, n_embd=n_embd, hidden_size=hidden_size, n_layer=n_layer)
        _check_dropout(dropout)
        self.embedding = nn.Embedding(vocab_size, n_embd)
        self.lstm = nn.LSTM(
            n_embd,
            hidden_size,
            num_layers=n_layer,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if n_layer > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_outputs)

    def sharding_units(self) -> list[nn.Module]:
        """The LSTM layers, one FSDP unit (``framework.strategy.FSDP2Strategy``)."""
        return [self.lstm]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64, (B, T) bool -> (B, num_outputs) logits."""
        aligned, lengths = left_aligned(ids, mask)
        embedded = self.dropout(self.embedding(aligned))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (final, _) = self.lstm(packed)  # final: (n_layer * directions, B, hidden)
        last = torch.cat([final[-2], final[-1]], dim=-1) if self.lstm.bidirectional else final[-1]
        return self.head(self.dropout(last))


class TransformerClassifier(nn.Module):
    """The GPT blocks without the causal mask, a key padding mask, pooling and a linear head.

    Positions count from each example's first real token, so an example's representation does
    not depend on how much padding precedes it. Initialisation follows GPT-2 (see
    :class:`~framework.models.GPT`).

    Args:
        vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias: as for GPT;
            ``block_size`` is the longest input (tokens).
        num_outputs: 1 for a binary logit, else one logit per class.
        pooling: ``mean`` over real tokens, or ``first`` (the first real token's state).

    Output: logits (B, num_outputs) float32.

    Raises:
        ConfigError: invalid sizes (see :class:`~framework.models.GPTConfig`) or pooling.
    """

    TASK_KIND = "classification"

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        block_size: int = 128,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        bias: bool = True,
        pooling: Literal["mean", "first"] = "mean",
    ) -> None:
        super().__init__()
        check_pooling(pooling, ("mean", "first"))
        check_sizes(num_outputs=num_outputs)
        config = GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias)
        self.pooling, self.block_size = pooling, block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(config, causal=False) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.head = nn.Linear(n_embd, num_outputs)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def sharding_units(self) -> list[nn.Module]:
        """The Transformer blocks, one FSDP unit each."""
        return list(self.blocks)

    def flops_per_token(self) -> int:
        """Training FLOPs per input token at ``block_size``, padding included: 6 N for the
        parameters that multiply (the embeddings are looked up) plus the attention term
        (:mod:`framework.models.flops`)."""
        return 6 * multiplying_parameters(self) + attention_flops(len(self.blocks), self.wte.embedding_dim, self.block_size)

    def parameter_depths(self) -> dict[str, int]:
        """Depths for layer-wise learning-rate decay: 0 for the embeddings, ``i + 1`` for
        ``blocks.<i>``, ``n_layer + 1`` for the final LayerNorm and the head."""
        top = len(self.blocks) + 1
        return {
            name: int(name.split(".")[1]) + 1 if name.startswith("blocks.") else 0 if name.startswith(("wte.", "wpe.")) else top
            for name, _ in self.named_parameters()
        }

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64, (B, T) bool -> (B, num_outputs) logits.

        Raises:
            ValueError: ``T > block_size``.
        """
        T = ids.size(1)
        if T > self.block_size:
            raise ValueError(f"Input has {T} tokens but model.block_size is {self.block_size}; raise it to data.max_length.")
        leading = leading_padding(mask)
        positions = (torch.arange(T, device=ids.device)[None, :] - leading[:, None]).clamp(min=0)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.blocks:
            x = block(x, key_mask=mask)
        return self.head(pooled_states(self.ln_f(x), mask, self.pooling))


class GPTClassifier(nn.Module):
    """A GPT (``framework.models.GPT``'s ``transformer``, so a language model's weights load by
    name with ``model.init_from``), causal attention, pooling and a linear head (Radford et al.,
    2018, *Improving Language Understanding by Generative Pre-Training*: the last token's state).

    Each example's real tokens are moved to the front first, so with causal attention no real
    token attends to padding and positions count from the text's first token, as in pretraining.

    Args:
        vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias, activation, n_inner: as
            for :class:`~framework.models.GPT`.
        num_outputs: 1 for a binary logit, else one logit per class.
        pooling: ``last``: the last real token's state; ``mean``: the mean over real tokens.

    Output: logits (B, num_outputs) float32.

    Raises:
        ConfigError: invalid sizes or pooling.
    """

    TASK_KIND = "classification"

    def __init__(
        self,
        *,
        vocab_size: int,
        num_outputs: int,
        block_size: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        bias: bool = True,
        activation: str = "gelu",
        n_inner: int | None = None,
        pooling: Literal["last", "mean"] = "last",
    ) -> None:
        super().__init__()
        check_pooling(pooling, ("last", "mean"))
        check_sizes(num_outputs=num_outputs)
        self.config = GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias, activation, n_inner)
        self.pooling, self.block_size = pooling, block_size
        self.transformer = decoder_body(self.config)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, num_outputs)
        init_gpt2_weights(self, n_layer)

    def sharding_units(self) -> list[nn.Module]:
        """The Transformer blocks, one FSDP unit each."""
        return list(self.transformer.h)

    def flops_per_token(self) -> int:
        """Training FLOPs per input token at ``block_size``, padding included: 6 N for the
        parameters that multiply (the embeddings are looked up: no LM head here) plus the
        attention term (:mod:`framework.models.flops`)."""
        return 6 * multiplying_parameters(self) + attention_flops(self.config.n_layer, self.config.n_embd, self.block_size)

    def parameter_depths(self) -> dict[str, int]:
        """See :func:`~framework.models.gpt.layer_depths`."""
        return layer_depths(self, self.config.n_layer)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64, (B, T) bool -> (B, num_outputs) logits."""
        aligned, lengths = left_aligned(ids, mask)
        aligned_mask = torch.arange(ids.size(1), device=ids.device)[None, :] < lengths[:, None]
        states = decode(self.transformer, aligned, self.block_size)
        return self.head(self.drop(pooled_states(states, aligned_mask, self.pooling)))


def pooled_states(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, C) states and their (B, T) bool mask (real tokens contiguous) -> (B, C): the first
    (``first``) or last (``last``) real token's state, or the mean over real tokens (``mean``)."""
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1) / weights.sum(dim=1)
    first = leading_padding(mask)
    position = first if pooling == "first" else first + mask.sum(dim=1) - 1
    return states[torch.arange(states.size(0), device=states.device), position]


def check_pooling(pooling: str, options: tuple[str, ...]) -> None:
    """Raise ConfigError naming ``model.pooling`` unless it is one of ``options``."""
    if pooling not in options:
        raise ConfigError(f"model.pooling={pooling!r} must be one of {', '.join(options)}.")


def check_sizes(**sizes: int) -> None:
    """Raise ConfigError naming ``model.<name>`` for a size below 1."""
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"model.{name}={value} must be a positive integer.")


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
