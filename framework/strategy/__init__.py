"""Distributed training strategies (``conf/strategy``) and how a run is launched across processes."""

from framework.strategy.fsdp import FSDP2Strategy

__all__ = ["FSDP2Strategy"]
