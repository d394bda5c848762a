"""Names of sweep jobs: the overrides a sweep varies, for job directories and tracker runs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from framework import process_env

MAX_NAME_CHARS = 120


def varying_overrides(overrides: Sequence[str]) -> str:
    """``key=value,...`` for this job's overrides of the swept keys, safe as a directory name;
    ``run`` outside a sweep. A name longer than ``MAX_NAME_CHARS`` characters keeps the whole
    overrides that fit and ends in ``,...`` (never a cut value); run.json has them all."""
    keys = process_env.swept_keys()
    parts = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") in keys]
    name = re.sub(r"[^\w.,=+-]", "_", ",".join(parts)) or "run"
    if len(name) <= MAX_NAME_CHARS:
        return name
    kept = name[: MAX_NAME_CHARS - len(",...")]
    return (kept[: kept.rfind(",")] if "," in kept else kept) + ",..."
