"""Training FLOPs per token of the models, for ``perf/mfu`` (``framework.callbacks.ThroughputLogger``).

The 6 N rule counts a multiply-add as 2 FLOPs, once forward and twice backward, for the N
parameters that multiply every token (Kaplan et al., 2020; Chowdhery et al., 2022, *PaLM*,
appendix B). An embedding table is only looked up, so it is left out of N unless a linear layer
shares it (a tied output head multiplies every token by it).
"""

from __future__ import annotations

from torch import nn


def multiplying_parameters(model: nn.Module) -> int:
    """Distinct parameters of ``model`` (tied ones once) that multiply each token: all but the
    weights of ``nn.Embedding`` modules that no ``nn.Linear`` shares."""
    linear_weights = {id(module.weight) for module in model.modules() if isinstance(module, nn.Linear)}
    looked_up = {
        id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding) and id(module.weight) not in linear_weights
    }
    return sum(parameter.numel() for parameter in model.parameters() if id(parameter) not in looked_up)


def attention_flops(n_layer: int, n_embd: int, context: int) -> int:
    """FLOPs per token of the attention scores and the weighted sum over ``context`` tokens,
    forward and backward: 12 n_layer n_embd context (PaLM, appendix B; nanoGPT's estimate_mfu)."""
    return 12 * n_layer * n_embd * context
