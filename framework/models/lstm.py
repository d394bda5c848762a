"""An LSTM language model baseline as a plain ``nn.Module``.

The classic recurrent LM of Zaremba et al. (2014), *Recurrent Neural Network Regularization*,
with optional input/output weight tying (Press & Wolf, 2017; Inan et al., 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from framework.errors import ConfigError


class LSTMLanguageModel(nn.Module):
    """Embedding -> ``n_layer`` LSTM -> dropout -> linear head.

    Args:
        vocab_size: rows of the embedding table and width of the output (tokens).
        n_embd: embedding size.
        hidden_size: LSTM hidden state size.
        n_layer: stacked LSTM layers.
        dropout: dropout on embeddings, between LSTM layers and before the head.
        tie_weights: share the embedding matrix with the output head; needs
            ``hidden_size == n_embd``.

    Input: ``(B, T)`` int64 token ids; the recurrent state starts at zero for every window.
    Output: ``(B, T, vocab_size)`` logits.

    Raises:
        ConfigError: on non-positive sizes, dropout outside [0, 1), or tying with
            ``hidden_size != n_embd``.
    """

    TASK_KIND = "language_modeling"

    def __init__(
        self,
        vocab_size: int,
        n_embd: int = 256,
        hidden_size: int = 256,
        n_layer: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        for name, value in dict(vocab_size=vocab_size, n_embd=n_embd, hidden_size=hidden_size, n_layer=n_layer).items():
            if value < 1:
                raise ConfigError(f"model.{name}={value} must be a positive integer.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        if tie_weights and hidden_size != n_embd:
            raise ConfigError(
                f"model.tie_weights=true needs model.hidden_size == model.n_embd, got "
                f"hidden_size={hidden_size} and n_embd={n_embd}; make them equal or set tie_weights=false."
            )
        self.embedding = nn.Embedding(vocab_size, n_embd)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(n_embd, hidden_size, num_layers=n_layer, dropout=dropout if n_layer > 1 else 0.0, batch_first=True)
        self.lm_head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.lm_head.weight = self.embedding.weight

    def num_parameters(self) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())

    def sharding_units(self) -> list[nn.Module]:
        """The LSTM layers, one FSDP unit (``framework.strategy.FSDP2Strategy``)."""
        return [self.lstm]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 token ids -> (B, T, vocab_size) logits."""
        hidden, _ = self.lstm(self.dropout(self.embedding(idx)))
        return self.lm_head(self.dropout(hidden))
