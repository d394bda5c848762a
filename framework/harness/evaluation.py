"""Running lm-evaluation-harness tasks on a model of ours, offline."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, MissingInputError
from framework.harness.shipped import VERSION, build_tasks, held_out_texts

SHIPPED = "shipped"
SHIPPED_PREFIXES = ("shakespeare_", "stdlib_")
INSTALL_HINT = "lm-evaluation-harness is not installed: pip install 'lm-framework[eval]' (or pip install lm-eval)."


@dataclass
class HarnessSettings:
    """What to evaluate (``harness`` of ``framework.evaluate``, ``callbacks.downstream``).

    Attributes:
        tasks: harness task names; ``shipped`` stands for every task of
            :mod:`framework.harness.shipped`. Empty: none.
        shakespeare: Tiny Shakespeare's ``input.txt``, which the shipped tasks are built from;
            None: the copy ``data=tinyshakespeare`` keeps in ``cache_dir``.
        include_path: a folder of the user's own harness task definitions (YAML).
        limit: items per task (the first ones); None: all.
        batch_size: requests per forward pass.
        cache_dir: where the shipped tasks are built (``<cache_dir>/harness/v<version>-<text hash>``).
    """

    tasks: list[str] = field(default_factory=list)
    shakespeare: str | None = None
    include_path: str | None = None
    limit: int | None = None
    batch_size: int = 32
    cache_dir: str = "~/.cache/lm-framework"

    def check(self, setting: str = "harness") -> None:
        """Raise ConfigError (or MissingInputError) for settings that cannot run, before any
        model is loaded: lm-eval absent, limit or batch size below 1, a missing folder."""
        if not self.tasks:
            return
        try:
            import lm_eval  # noqa: F401
        except ImportError:
            raise ConfigError(f"{setting}.tasks={list(self.tasks)}: {INSTALL_HINT}") from None
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"{setting}.limit={self.limit} must be null (every item) or at least 1.")
        if self.batch_size < 1:
            raise ConfigError(f"{setting}.batch_size={self.batch_size} must be at least 1.")
        if self.include_path and not Path(self.include_path).expanduser().is_dir():
            raise MissingInputError(f"{setting}.include_path={self.include_path} is not a folder of harness task definitions (YAML).")
        if SHIPPED in self.tasks or any(name.startswith(SHIPPED_PREFIXES) for name in self.tasks):
            self.shakespeare_file(setting)

    def shakespeare_file(self, setting: str = "harness") -> Path:
        path = (
            Path(self.shakespeare).expanduser()
            if self.shakespeare
            else Path(self.cache_dir).expanduser() / "datasets" / "tinyshakespeare" / "input.txt"
        )
        if not path.is_file():
            raise MissingInputError(
                f"The shipped harness tasks are built from Tiny Shakespeare, not found at {path}: pass "
                f"{setting}.shakespeare=<path to input.txt> (or train once with data=tinyshakespeare, which keeps a copy there)."
            )
        return path


def shipped_task_folder(settings: HarnessSettings) -> Path:
    """The folder of the shipped tasks, built on first use (the same texts give the same
    folder and files); its ``tasks.json`` lists them with their chance levels."""
    texts = held_out_texts(settings.shakespeare_file())
    digest = hashlib.sha256("\0".join(part for text in texts for part in (text.name, text.train, text.val)).encode()).hexdigest()[:16]
    folder = Path(settings.cache_dir).expanduser() / "harness" / f"v{VERSION}-{digest}"
    if not (folder / "tasks.json").exists():
        partial = folder.with_name(folder.name + ".partial")  # renamed when complete: never a half-built folder
        build_tasks(texts, partial, named_folder=folder)
        partial.replace(folder)
    return folder


def binomial_p_value(successes: int, trials: int, chance: float) -> float:
    """One-sided exact binomial test: P(X >= ``successes``) for X ~ Binomial(``trials``, ``chance``)."""
    if chance <= 0:
        return 0.0 if successes > 0 else 1.0
    if chance >= 1:
        return 1.0
    terms = (
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * math.log(chance)
        + (trials - k) * math.log1p(-chance)
        for k in range(successes, trials + 1)
    )
    return min(1.0, sum(math.exp(term) for term in terms))


def _offline() -> None:
    """No Hugging Face Hub access: a task that needs a download fails at once."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets
    import huggingface_hub.constants

    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.disable_progress_bars()


@contextlib.contextmanager
def _without_progress_bars() -> Iterator[None]:
    """The harness draws a tqdm bar per task and request type, which would interleave with the
    command's own output and the training progress bar."""
    from tqdm import tqdm

    original = tqdm.__init__
    tqdm.__init__ = functools.partialmethod(original, disable=True)
    try:
        yield
    finally:
        tqdm.__init__ = original


@dataclass(frozen=True)
class HarnessTasks:
    """Tasks ready to run: their names, the harness's ``TaskManager`` that finds them, and the
    shipped tasks' ``tasks.json`` (chance levels)."""

    names: list[str]
    manager: Any
    manifest: dict[str, dict]


def find_tasks(settings: HarnessSettings, setting: str = "harness") -> HarnessTasks:
    """Check ``settings`` (:meth:`HarnessSettings.check`), build the shipped tasks if asked for,
    and find every task, before any model is loaded.

    Raises:
        ConfigError: an unknown task name (the shipped ones listed), or settings that cannot run.
    """
    settings.check(setting)
    _offline()
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    folders, manifest = [], {}
    names = [name for name in settings.tasks if name != SHIPPED]
    if SHIPPED in settings.tasks or any(name.startswith(SHIPPED_PREFIXES) for name in names):
        shipped = shipped_task_folder(settings)
        manifest = json.loads((shipped / "tasks.json").read_text())
        folders.append(str(shipped))
        if SHIPPED in settings.tasks:
            names = [*manifest, *(name for name in names if name not in manifest)]
    if settings.include_path:
        folders.append(str(Path(settings.include_path).expanduser()))
    manager = TaskManager(include_path=folders or None, include_defaults=False)
    if any(name not in manager.all_tasks for name in names):
        manager = TaskManager(include_path=folders or None)  # with the harness's own tasks: about 10 s to index
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        raise ConfigError(
            f"{setting}.tasks: unknown task(s) {', '.join(unknown)}. The framework ships {SHIPPED} = "
            f"{', '.join(manifest) or 'shakespeare_continuation, shakespeare_cloze, stdlib_continuation, stdlib_cloze'}; "
            f"your own task YAMLs are read from {setting}.include_path=<folder>; `lm-eval ls tasks` lists the harness's."
        )
    return HarnessTasks(names, manager, manifest)


def run_tasks(model, tasks: HarnessTasks, limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate ``model`` (a :class:`~framework.harness.model.HarnessModel`) on ``tasks``,
    zero-shot, at most ``limit`` items each.

    Returns:
        ``{task: {metric: value, ..., "items": n}}`` with the harness's metric names (``acc``,
        ``acc_norm``, ``perplexity``); a shipped task adds ``chance`` and ``p_value`` (one-sided
        exact binomial test of its ``acc`` against chance).

    Raises:
        ConfigError: a task whose data would have to be downloaded.
    """
    from lm_eval import simple_evaluate

    try:
        with _without_progress_bars():
            output = simple_evaluate(
                model=model, tasks=tasks.names, task_manager=tasks.manager, limit=limit, log_samples=False, bootstrap_iters=0
            )
    except (ConnectionError, OSError) as error:
        raise ConfigError(
            f"harness.tasks={tasks.names}: a task needs data from the Hugging Face Hub, and the harness runs offline (HF_HUB_OFFLINE=1): "
            f"{str(error).splitlines()[0]}. Give tasks whose YAML reads local files (dataset_path: json with data_files)."
        ) from None
    results = {}
    for name in tasks.names:
        values = {
            metric.split(",")[0]: value
            for metric, value in output["results"][name].items()
            if metric not in ("alias", "sample_len") and not metric.split(",")[0].endswith("_stderr") and isinstance(value, (int, float))
        }
        values["items"] = int(output["n-samples"][name]["effective"])
        if name in tasks.manifest:
            chance = tasks.manifest[name]["chance"]
            values.update(chance=chance, p_value=binomial_p_value(round(values["acc"] * values["items"]), values["items"], chance))
        results[name] = values
    return results
