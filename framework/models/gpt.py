"""A GPT-2 style decoder-only Transformer as a plain ``nn.Module``.

Follows Radford et al. (2019), *Language Models are Unsupervised Multitask Learners*, in the
form popularised by nanoGPT: learned position embeddings, pre-LayerNorm blocks, causal
self-attention through ``torch.nn.functional.scaled_dot_product_attention`` (flash or
memory-efficient kernels where the device has them; in float32 for bf16/fp16 on CPU, see
:func:`attention`), a 4x GELU MLP, a final LayerNorm and an
LM head tied to the token embedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from framework.errors import ConfigError
from framework.models.flops import attention_flops, multiplying_parameters

# The MLP nonlinearities: exact GELU, and GPT-2's tanh approximation.
ACTIVATIONS = {"gelu": "none", "gelu_tanh": "tanh"}


@dataclass(frozen=True)
class GPTConfig:
    """Hyperparameters of :class:`GPT`, named as in GPT-2 and nanoGPT.

    Attributes:
        vocab_size: rows of the token embedding table (tokens).
        block_size: longest context the model accepts, and the size of the position table (tokens).
        n_layer: number of Transformer blocks.
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: width of the residual stream.
        dropout: dropout probability on embeddings, attention weights and residual branches.
        bias: whether Linear and LayerNorm layers carry a bias (GPT-2: True).
        activation: the MLP's nonlinearity: ``gelu`` (exact, erf) or ``gelu_tanh`` (the tanh
            approximation of Hendrycks & Gimpel, 2016, that GPT-2 uses: ``gelu_new`` in
            ``transformers``).
        n_inner: width of the MLP's hidden layer; None is ``4 * n_embd``.
        layer_norm_eps: the LayerNorms' epsilon (GPT-2: 1e-5; BERT: 1e-12).
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True
    activation: str = "gelu"
    n_inner: int | None = None
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be a positive integer.")
        if self.n_inner is not None and self.n_inner < 1:
            raise ConfigError(f"model.n_inner={self.n_inner} must be null (4 * n_embd) or a positive integer.")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation={self.activation!r} must be one of {', '.join(ACTIVATIONS)}.")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"model.n_embd={self.n_embd} is not divisible by model.n_head={self.n_head}; choose n_head among the divisors of n_embd."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1).")


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **options) -> torch.Tensor:
    """``F.scaled_dot_product_attention(query, key, value, **options)``, computed in float32 when
    the inputs are bf16 or fp16 on CPU; (B, n_head, T, head_dim) in, the same shape and dtype out.

    On CPU (torch 2.13, AVX-512 BF16), SDPA's flash-attention backward in bf16 took 10.8 ms per
    call for the shakespeare_char shapes (12 x 4 heads x 64 x 32) and 14.0 ms in fp16, against
    2.75 ms in fp32: about 38 % of a bf16-mixed step. Casting to float32 (autocast disabled,
    which would cast back) keeps the flash kernel, memory linear in the sequence length and fp32
    accuracy; it also beat SDPA's math kernel (which on CPU computes in fp32 too, but holds the
    whole T x T matrix) at every length tried, T = 64 to 1024.
    """
    if query.device.type != "cpu" or query.dtype not in (torch.bfloat16, torch.float16):
        return F.scaled_dot_product_attention(query, key, value, **options)
    with torch.autocast("cpu", enabled=False):
        return F.scaled_dot_product_attention(query.float(), key.float(), value.float(), **options).to(query.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention: causal (position t attends to positions <= t) for the LM, or
    bidirectional with a key padding mask for encoders."""

    def __init__(self, config: GPTConfig, causal: bool = True) -> None:
        super().__init__()
        self.causal = causal
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) float -> (B, T, C) float; ``key_mask`` (B, T) bool, True on keys that may be
        attended to (only without ``causal``)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        attn_mask = key_mask[:, None, None, :] if key_mask is not None else None
        y = attention(q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward layer: C -> n_inner (default 4C) -> GELU -> C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner, bias=config.bias)
        self.gelu = nn.GELU(approximate=ACTIVATIONS[config.activation])
        self.c_proj = nn.Linear(inner, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) float -> (B, T, C) float."""
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, causal: bool = True) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = SelfAttention(config, causal)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) float -> (B, T, C) float; ``key_mask`` as in :class:`SelfAttention`."""
        x = x + self.attn(self.ln_1(x), key_mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only Transformer language model.

    Args are the fields of :class:`GPTConfig` (see there), given as keywords so that a Hydra
    config (``conf/model/gpt.yaml``) instantiates it directly and can be checked against this
    signature.

    Input: token ids ``(B, T)`` int64 with ``T <= block_size``.
    Output: next-token logits ``(B, T, vocab_size)`` in the parameters' dtype (float32 unless
    autocast is active).

    Initialisation follows GPT-2: normal(0, 0.02) weights, zero biases, and residual output
    projections (``c_proj``) scaled by ``1/sqrt(2 * n_layer)``.

    Raises:
        ConfigError: on an invalid configuration (see :class:`GPTConfig`).
        ValueError: in ``forward`` when ``T > block_size``.
    """

    TASK_KIND = "language_modeling"

    def __init__(
        self,
        *,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float = 0.0,
        bias: bool = True,
        activation: str = "gelu",
        n_inner: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config = GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias, activation, n_inner)
        self.block_size = config.block_size
        self.transformer = decoder_body(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf, 2017)
        init_gpt2_weights(self, config.n_layer)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Number of distinct parameters (tied weights counted once).

        With ``non_embedding=True`` the position embeddings are excluded, the figure nanoGPT
        prints (the token embedding stays in because the LM head shares it).
        """
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.transformer.wpe.weight.numel()
        return total

    def flops_per_token(self) -> int:
        """Training FLOPs per token at full context: 6 N for the N parameters that multiply
        (position embeddings are only looked up; the token embedding counts as the LM head it is
        tied to) plus the attention scores and weighted sum, 12 n_layer n_embd block_size
        (Chowdhery et al., 2022, *PaLM*, appendix B; the estimate nanoGPT's ``estimate_mfu`` uses)."""
        config = self.config
        return 6 * multiplying_parameters(self) + attention_flops(config.n_layer, config.n_embd, config.block_size)

    def sharding_units(self) -> list[nn.Module]:
        """The Transformer blocks: each is one FSDP unit (``framework.strategy.FSDP2Strategy``)."""
        return list(self.transformer.h)

    def parameter_depths(self) -> dict[str, int]:
        """Each parameter's depth for layer-wise learning-rate decay (``framework.optim``):
        0 for the embeddings, ``i + 1`` for block ``i``, ``n_layer + 1`` for the final LayerNorm."""
        return layer_depths(self, self.config.n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 token ids -> (B, T, vocab_size) logits."""
        return self.lm_head(decode(self.transformer, idx, self.block_size))


def decoder_body(config: GPTConfig) -> nn.ModuleDict:
    """GPT's ``transformer``: token and position embeddings, dropout, the blocks ``h`` and the
    final LayerNorm ``ln_f``; shared by :class:`GPT` and the GPT classifier, so that one's
    weights load into the other by name."""
    return nn.ModuleDict(
        dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias),
        )
    )


def decode(transformer: nn.ModuleDict, idx: torch.Tensor, block_size: int) -> torch.Tensor:
    """(B, T) int64 ids -> (B, T, n_embd) final hidden states of :func:`decoder_body`.

    Raises:
        ValueError: ``T > block_size``.
    """
    T = idx.size(1)
    if T > block_size:
        raise ValueError(
            f"Input has {T} tokens but the model's block_size is {block_size}; "
            "crop the context or build the model with a larger model.block_size."
        )
    positions = torch.arange(T, device=idx.device)
    x = transformer.drop(transformer.wte(idx) + transformer.wpe(positions))
    for block in transformer.h:
        x = block(x)
    return transformer.ln_f(x)


def init_gpt2_weights(model: nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation: normal(0, 0.02) Linear and Embedding weights, zero biases, and
    residual output projections (``c_proj``) at ``0.02 / sqrt(2 * n_layer)``. Modules are
    visited in ``nn.Module.apply``'s order (children first), which fixes the random draws."""
    model.apply(_init_module)
    for name, parameter in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


def _init_module(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def layer_depths(model: nn.Module, n_layer: int, body: str = "transformer") -> dict[str, int]:
    """Depths of ``model``'s parameters for layer-wise decay, its blocks under ``<body>.h`` (GPT's
    ``transformer``, BERT's ``encoder``; see :meth:`GPT.parameter_depths`): ``<body>.h.<i>.``
    is ``i + 1``; other ``<body>.`` parameters are embeddings (0) except ``ln_f`` (``n_layer + 1``);
    parameters outside the body (a head) are ``n_layer + 1``."""
    depths = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        if parts[0] != body or parts[1] == "ln_f":
            depths[name] = n_layer + 1
        elif parts[1] == "h":
            depths[name] = int(parts[2]) + 1
        else:
            depths[name] = 0
    return depths
