"""What each process of a run was, gathered on every rank for the run record."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from typing import Any

import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf


def config_digest(cfg: DictConfig) -> str:
    """sha256 of the resolved config, to show that every process ran the same one."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()


def gather_process_facts(rank: int, cfg: DictConfig, best_checkpoint: str | None) -> list[dict[str, Any]]:
    """One entry per process, ordered by rank: rank, hostname, pid, config digest, best checkpoint.

    Every process must call it (it is a collective when a process group is running).
    """
    facts = {
        "rank": rank,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "config_sha256": config_digest(cfg),
        "best_checkpoint": best_checkpoint,
    }
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [facts]
    gathered: list[dict[str, Any] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, facts)
    return sorted(gathered, key=lambda item: item["rank"])


def end_process_group() -> None:
    """Destroy the default process group after a successful run, when one is running.

    Lightning's DDP strategy leaves it to the script; a Gloo group still alive at interpreter exit
    can abort the process ("terminate called without an active exception", SIGABRT) as its worker
    threads are torn down (pytorch/pytorch#190489; torchtitan's train.py destroys it the same way,
    on success only, since a collective after another rank's failure would hang).
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
