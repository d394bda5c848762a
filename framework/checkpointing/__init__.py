"""Checkpoint files: atomic writes, safe loading, and resuming a run from its last checkpoint."""

from framework.checkpointing.atomic_io import AtomicCheckpointIO, load_checkpoint_file
from framework.checkpointing.resume import (
    RESUME_MODES,
    check_architecture,
    check_parameter_groups,
    check_resume_compatible,
    last_checkpoint_path,
    resume_checkpoint,
)
from framework.checkpointing.sharded import consolidate, consolidated_path, is_sharded_checkpoint, read_checkpoint_summary

__all__ = [
    "RESUME_MODES",
    "AtomicCheckpointIO",
    "check_architecture",
    "check_parameter_groups",
    "check_resume_compatible",
    "consolidate",
    "consolidated_path",
    "is_sharded_checkpoint",
    "last_checkpoint_path",
    "load_checkpoint_file",
    "read_checkpoint_summary",
    "resume_checkpoint",
]
