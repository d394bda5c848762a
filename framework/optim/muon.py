"""Muon on the hidden matrices, AdamW on the rest: one ``torch.optim.Optimizer`` holding both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import hydra.utils
import torch
from torch import nn

# Top-level modules that map hidden states to outputs (vocabulary logits, class scores): trained
# by AdamW, as in Jordan et al. (2024), whose Muon is for the matrices between hidden layers.
OUTPUT_MODULES = ("lm_head", "head")


def uses_muon(config: Mapping) -> bool:
    """Whether the ``conf/optimizer`` node ``config`` builds :class:`MuonAdamW`."""
    return issubclass(hydra.utils.get_class(config["_target_"]), MuonAdamW)


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The parameters Muon trains: the 2-D weights of ``nn.Linear`` and ``nn.LSTM`` modules that
    are neither an output module (:data:`OUTPUT_MODULES`) nor tied to an embedding table.

    Fused matrices are orthogonalised whole: a GPT block's query-key-value projection
    ``c_attn.weight`` ``(3 C, C)`` and an LSTM's gate matrices ``weight_ih_l<k>``/``weight_hh_l<k>``
    ``(4 H, ·)`` are each one parameter, and ``torch.optim.Muon`` orthogonalises each parameter
    it is given; splitting them per block would take separate parameters, changing the
    checkpoint and Hugging Face layouts every other part of the framework reads.
    """
    embeddings = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    matrices, seen = [], set()
    for name, module in model.named_modules():
        if name.split(".")[0] in OUTPUT_MODULES or not isinstance(module, (nn.Linear, nn.LSTM)):
            continue
        for parameter in module.parameters(recurse=False):
            if parameter.dim() == 2 and parameter.requires_grad and id(parameter) not in embeddings | seen:
                seen.add(id(parameter))
                matrices.append(parameter)
    return matrices


def split_hidden_matrices(groups: Iterable[dict], model: nn.Module, muon: Mapping, lr: float | None) -> list[dict]:
    """Move :func:`hidden_matrices` out of ``groups`` (``framework.optim.parameter_groups``) into
    Muon groups named ``muon`` (or ``muon/<part>`` for a fine-tuning part), each with Muon's
    ``lr`` times the part's ratio to ``lr`` (the AdamW rate) and Muon's ``weight_decay``."""
    hidden = {id(parameter) for parameter in hidden_matrices(model)}
    muon_groups, adamw_groups = [], []
    for group in groups:
        inside = [parameter for parameter in group["params"] if id(parameter) in hidden]
        outside = [parameter for parameter in group["params"] if id(parameter) not in hidden]
        if inside:
            part = group["name"].partition("/")[2]
            ratio = group["lr"] / lr if "lr" in group and lr else 1.0
            muon_groups.append(
                {
                    **group,
                    "name": f"muon/{part}" if part else "muon",
                    "params": inside,
                    "lr": muon["lr"] * ratio,
                    "weight_decay": muon["weight_decay"],
                }
            )
        if outside:
            adamw_groups.append({**group, "params": outside})
    return muon_groups + adamw_groups


class MuonAdamW(torch.optim.Optimizer):
    """``torch.optim.Muon`` (Jordan et al., 2024, *Muon: An optimizer for hidden layers in
    neural networks*) on the groups whose ``name`` starts with ``muon``, ``torch.optim.AdamW``
    (Loshchilov & Hutter, 2019) on the others, as modded-nanogpt and nanochat train GPTs.

    One optimizer to Lightning, the schedules and checkpoints: ``param_groups`` is Muon's groups
    followed by AdamW's (the same dicts, so a schedule's rates reach both), ``state`` is shared,
    and ``state_dict``/``load_state_dict`` are torch's. Each group keeps its own ``lr`` and
    ``weight_decay``.

    Args:
        params: parameter groups from :func:`split_hidden_matrices`; Muon's must hold 2-D
            tensors only (``torch.optim.Muon`` raises ValueError otherwise).
        lr, betas, eps, weight_decay, fused: AdamW's defaults for its groups.
        muon: ``torch.optim.Muon``'s arguments (``lr``, ``momentum``, ``nesterov``, ``ns_steps``,
            ``adjust_lr_fn``, ``weight_decay``...); its groups already carry ``lr`` and
            ``weight_decay``.
    """

    def __init__(
        self,
        params: Iterable[dict],
        muon: Mapping,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fused: bool | None = None,
    ) -> None:
        groups = list(params)
        muon_groups = [group for group in groups if group["name"].startswith("muon")]
        adamw_groups = [group for group in groups if not group["name"].startswith("muon")]
        muon_arguments = {key: value for key, value in muon.items() if key not in ("lr", "weight_decay")}
        self.muon = torch.optim.Muon(muon_groups, **muon_arguments)
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=fused)
        super().__init__([*self.muon.param_groups, *self.adamw.param_groups], defaults=dict(lr=lr))
        self._link()

    def _link(self) -> None:
        """Make both inner optimizers use this optimizer's group dicts and state (torch's
        ``load_state_dict`` replaces them with new objects)."""
        count = len(self.muon.param_groups)
        self.muon.param_groups, self.adamw.param_groups = self.param_groups[:count], self.param_groups[count:]
        self.muon.state = self.adamw.state = self.state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._link()

    @torch.no_grad()
    def step(self, closure=None):
        """Evaluate ``closure`` (forward and backward) once if given, then step Muon and AdamW."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss
