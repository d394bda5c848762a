"""Distributed training strategies (``conf/strategy``) and how a run is launched across processes.

``FSDP2Strategy`` loads on first use (PEP 562), so that ``framework.strategy.launch``, which
commands that never train also use, does not import PyTorch Lightning.
"""

__all__ = ["FSDP2Strategy"]


def __getattr__(name: str):
    if name != "FSDP2Strategy":
        raise AttributeError(f"module 'framework.strategy' has no attribute {name!r}")
    from framework.strategy.fsdp import FSDP2Strategy

    return FSDP2Strategy
