"""A BERT encoder (Devlin et al., 2019, *BERT: Pre-training of Deep Bidirectional Transformers
for Language Understanding*) as plain ``nn.Module``s: the masked-LM model and a classifier.

The layout is BERT's, so that Hugging Face ``BertModel`` / ``BertForMaskedLM`` weights load
exactly (``framework.transfer.hf``): token, position and token-type embeddings summed and
normalised (embedding LayerNorm), post-LayerNorm blocks (``x = ln(x + sublayer(x))``) with
bidirectional attention and a key padding mask, and the MLM head's transform (dense, GELU,
LayerNorm) followed by a decoder tied to the token embedding, with its own bias. The attention
and MLP sublayers are the GPT's (``framework.models.gpt``), with fused query/key/value weights.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from framework.errors import ConfigError
from framework.models.classifiers import check_pooling, check_sizes, leading_padding, pooled_states
from framework.models.flops import attention_flops, multiplying_parameters
from framework.models.gpt import ACTIVATIONS, MLP, GPTConfig, SelfAttention, layer_depths


class PostNormBlock(nn.Module):
    """BERT's block: ``x = ln_1(x + attn(x))``, then ``x = ln_2(x + mlp(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(config, causal=False)
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, C) float -> (B, T, C) float; ``key_mask`` (B, T) bool, True on real tokens."""
        x = self.ln_1(x + self.attn(x, key_mask))
        return self.ln_2(x + self.mlp(x))


class BertEncoder(nn.Module):
    """Embeddings and post-LN blocks: ``(ids, mask)`` -> hidden states (B, T, n_embd).

    Positions count from each example's first real token: with padding after the text (BERT's
    layout) they are BERT's 0, 1, 2, ...; text padded in front gets the same positions.
    """

    def __init__(self, config: GPTConfig, type_vocab_size: int) -> None:
        super().__init__()
        self.block_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.wtt = nn.Embedding(type_vocab_size, config.n_embd)
        self.ln_e = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(PostNormBlock(config) for _ in range(config.n_layer))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 ids, (B, T) bool mask (True on real tokens) -> (B, T, n_embd) float.
        Every token is of type 0 (one text per example, as in single-sentence fine-tuning).

        Raises:
            ValueError: ``T > block_size``.
        """
        T = ids.size(1)
        if T > self.block_size:
            raise ValueError(f"Input has {T} tokens but model.block_size is {self.block_size}; raise it to data.max_length.")
        positions = (torch.arange(T, device=ids.device)[None, :] - leading_padding(mask)[:, None]).clamp(min=0)
        x = self.drop(self.ln_e(self.wte(ids) + self.wpe(positions) + self.wtt.weight[0]))
        key_mask = None if bool(mask.all()) else mask
        for block in self.h:
            x = block(x, key_mask)
        return x


class MaskedLanguageModelHead(nn.Module):
    """BERT's MLM head: dense -> GELU -> LayerNorm, then logits through the (tied) token
    embedding plus a bias of ``vocab_size``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.gelu = nn.GELU(approximate=ACTIVATIONS[config.activation])
        self.ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """(..., n_embd) hidden states and the (vocab_size, n_embd) embedding -> (..., vocab_size) logits."""
        return nn.functional.linear(self.ln(self.gelu(self.dense(hidden))), embedding, self.bias)


def bert_config(
    vocab_size: int,
    block_size: int,
    n_layer: int,
    n_head: int,
    n_embd: int,
    n_inner: int | None,
    dropout: float,
    activation: str,
    layer_norm_eps: float,
    type_vocab_size: int,
) -> GPTConfig:
    """The :class:`GPTConfig` of a BERT encoder (biases always on, as in BERT).

    Raises:
        ConfigError: invalid sizes (see :class:`GPTConfig`), ``type_vocab_size < 1`` or
            ``layer_norm_eps <= 0``.
    """
    check_sizes(type_vocab_size=type_vocab_size)
    if not layer_norm_eps > 0:
        raise ConfigError(f"model.layer_norm_eps={layer_norm_eps} must be > 0.")
    return GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout, True, activation, n_inner, layer_norm_eps)


def init_bert_weights(model: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) Linear and Embedding weights, zero biases
    (LayerNorms start at one and zero)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class BertMaskedLM(nn.Module):
    """BERT for masked language modelling: :class:`BertEncoder` and :class:`MaskedLanguageModelHead`.

    Args:
        vocab_size: token embedding rows (tokens). block_size: longest input, the position
            table's size (tokens). n_layer, n_head, n_embd: as for GPT. n_inner: the MLP's
            hidden width (None: 4 n_embd). dropout: on embeddings, attention and residual
            branches. activation: ``gelu`` (BERT) or ``gelu_tanh``. layer_norm_eps: BERT's 1e-12.
        type_vocab_size: token-type (segment) embedding rows (BERT: 2).

    Input: ``ids`` (B, T) int64 and ``mask`` (B, T) bool, True on real tokens.
    Output: logits (B, T, vocab_size) in the parameters' dtype.

    Raises:
        ConfigError: invalid sizes (see :func:`bert_config`).
    """

    TASK_KIND = "masked_language_modeling"

    def __init__(
        self,
        *,
        vocab_size: int,
        block_size: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        n_inner: int | None = None,
        dropout: float = 0.1,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-12,
        type_vocab_size: int = 2,
    ) -> None:
        super().__init__()
        self.config = bert_config(
            vocab_size, block_size, n_layer, n_head, n_embd, n_inner, dropout, activation, layer_norm_eps, type_vocab_size
        )
        self.encoder = BertEncoder(self.config, type_vocab_size)
        self.mlm = MaskedLanguageModelHead(self.config)
        init_bert_weights(self)

    def sharding_units(self) -> list[nn.Module]:
        """The blocks, one FSDP unit each (``framework.strategy.FSDP2Strategy``)."""
        return list(self.encoder.h)

    def flops_per_token(self, predicted_fraction: float = 0.15) -> float:
        """Training FLOPs per input token at ``block_size``, padding included: 6 N for the
        encoder's multiplying parameters plus its attention term (:mod:`framework.models.flops`),
        and the MLM head (dense layer and the tied vocabulary matrix) on the
        ``predicted_fraction`` of positions it scores (BERT's 15 %, ``task.mask_probability``)."""
        config = self.config
        encoder = 6 * multiplying_parameters(self.encoder) + attention_flops(config.n_layer, config.n_embd, config.block_size)
        head = 6 * (self.mlm.dense.weight.numel() + self.encoder.wte.weight.numel())
        return encoder + predicted_fraction * head

    def parameter_depths(self) -> dict[str, int]:
        """0 for the embeddings, ``i + 1`` for block ``i``, ``n_layer + 1`` for the heads
        (:func:`~framework.models.gpt.layer_depths` of ``encoder``)."""
        return layer_depths(self, self.config.n_layer, body="encoder")

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, predict_at: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) int64, (B, T) bool -> (B, T, vocab_size) logits; with ``predict_at`` (B, T)
        bool, only the logits of those M positions, (M, vocab_size), in row-major order (the
        head is the costliest layer of a small model, and MLM's loss needs 15 % of it)."""
        hidden = self.encoder(ids, mask)
        if predict_at is not None:
            hidden = hidden[predict_at]
        return self.mlm(hidden, self.encoder.wte.weight)


class BertClassifier(nn.Module):
    """A BERT encoder, pooling and a linear head (Devlin et al., 2019, section 4.1).

    Args:
        vocab_size ... type_vocab_size: as for :class:`BertMaskedLM`, so that its encoder's
            weights load by name (``model.init_from``).
        num_outputs: 1 for a binary logit, else one logit per class.
        pooling: ``first``: the first real token's state (``[CLS]``; BERT's pooler dense layer
            is not used); ``mean``: the mean over real tokens.

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
        n_inner: int | None = None,
        dropout: float = 0.1,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-12,
        type_vocab_size: int = 2,
        pooling: Literal["first", "mean"] = "first",
    ) -> None:
        super().__init__()
        check_sizes(num_outputs=num_outputs)
        check_pooling(pooling, ("first", "mean"))
        self.config = bert_config(
            vocab_size, block_size, n_layer, n_head, n_embd, n_inner, dropout, activation, layer_norm_eps, type_vocab_size
        )
        self.pooling = pooling
        self.encoder = BertEncoder(self.config, type_vocab_size)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, num_outputs)
        init_bert_weights(self)

    def sharding_units(self) -> list[nn.Module]:
        """The blocks, one FSDP unit each."""
        return list(self.encoder.h)

    def flops_per_token(self) -> int:
        """Training FLOPs per input token at ``block_size``, padding included: 6 N for the
        parameters that multiply (the embeddings are looked up) plus the attention term
        (:mod:`framework.models.flops`)."""
        config = self.config
        return 6 * multiplying_parameters(self) + attention_flops(config.n_layer, config.n_embd, config.block_size)

    def parameter_depths(self) -> dict[str, int]:
        """0 for the embeddings, ``i + 1`` for block ``i``, ``n_layer + 1`` for the heads
        (:func:`~framework.models.gpt.layer_depths` of ``encoder``)."""
        return layer_depths(self, self.config.n_layer, body="encoder")

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64, (B, T) bool -> (B, num_outputs) logits."""
        states = self.encoder(ids, mask)
        return self.head(self.drop(pooled_states(states, mask, self.pooling)))
