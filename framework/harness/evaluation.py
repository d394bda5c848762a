"""Running lm-evaluation-harness tasks on a model of ours, offline."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, DataError, MissingInputError
from framework.harness import shipped
from framework.harness.shipped import SHIPPED_TASKS, TINY_SHAKESPEARE_SHA256, VERSION, build_tasks, held_out_texts

SHIPPED = "shipped"
FEWSHOT_SEED = 1234  # the harness's default: which examples a few-shot task shows
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
        cache_dir: where the shipped tasks are built (``<cache_dir>/harness/v<version>-<text hash>``);
            by default ``$LM_FRAMEWORK_CACHE`` or ``~/.cache/lm-framework``, as ``paths.cache_dir``.
    """

    tasks: list[str] = field(default_factory=list)
    shakespeare: str | None = None
    include_path: str | None = None
    limit: int | None = None
    batch_size: int = 32
    cache_dir: str = field(default_factory=lambda: os.environ.get("LM_FRAMEWORK_CACHE", "~/.cache/lm-framework"))

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
        if self.wants_shipped():
            self.shakespeare_file(setting)

    def wants_shipped(self) -> bool:
        """Whether any task asked for ships with the framework."""
        return any(name == SHIPPED or name in SHIPPED_TASKS for name in self.tasks)

    def shakespeare_file(self, setting: str = "harness") -> Path:
        """The Tiny Shakespeare file the shipped tasks are built from.

        Raises:
            MissingInputError: it is not there, naming ``<setting>.shakespeare``.
            DataError: another file (its sha256 is not char-rnn's ``input.txt``).
        """
        path = (
            Path(self.shakespeare).expanduser()
            if self.shakespeare
            else Path(self.cache_dir).expanduser() / "datasets" / "tinyshakespeare" / "input.txt"
        )
        if not path.is_file():
            raise MissingInputError(
                f"The shipped harness tasks are built from Tiny Shakespeare, not found at {path}: pass "
                f"{setting}.shakespeare=<path to input.txt> (the data.path of a data=tinyshakespeare run; without one, such "
                "a run downloads the copy this default reads)."
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != TINY_SHAKESPEARE_SHA256:
            raise DataError(
                f"{setting}.shakespeare={path} has sha256 {digest}, not Tiny Shakespeare's {TINY_SHAKESPEARE_SHA256}: the shipped "
                "tasks are defined on that file, so scores on another would not compare. Give char-rnn's input.txt."
            )
        return path


def shipped_task_folder(settings: HarnessSettings) -> Path:
    """The folder of the shipped tasks, built on first use; its name holds a hash of the texts
    and of the code that builds the tasks, so the same texts and code find the same files and a
    changed construction never reads old ones. ``tasks.json`` lists the tasks with their chance levels."""
    texts = held_out_texts(settings.shakespeare_file())
    digest = hashlib.sha256(Path(shipped.__file__).read_bytes())
    for text in texts:
        digest.update("\0".join((text.name, text.train, text.val)).encode())
    folder = Path(settings.cache_dir).expanduser() / "harness" / f"v{VERSION}-{digest.hexdigest()[:16]}"
    if not (folder / "tasks.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))  # renamed when complete
        build_tasks(texts, partial, named_folder=folder)
        try:
            partial.replace(folder)
        except OSError:  # another process finished the same build first: its files are the same
            shutil.rmtree(partial)
    return folder


def binomial_p_value(successes: int, trials: int, chance: float) -> float | None:
    """One-sided exact binomial test: P(X >= ``successes``) for X ~ Binomial(``trials``,
    ``chance``), with 0 <= ``successes`` <= ``trials``; None when ``chance`` is 0 or 1 (no test)."""
    if not 0 < chance < 1:
        return None
    terms = (
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * math.log(chance)
        + (trials - k) * math.log1p(-chance)
        for k in range(successes, trials + 1)
    )
    return min(1.0, sum(math.exp(term) for term in terms))


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """No Hugging Face Hub access inside the block (a task that needs a download fails at once)
    and no progress bars from datasets and the harness (they would interleave with the
    command's output and the training progress bar); both restored after it."""
    import datasets
    import huggingface_hub.constants
    from tqdm import tqdm

    saved_environment = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    saved_flags = (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    bars, tqdm_init = datasets.utils.are_progress_bars_disabled(), tqdm.__init__
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.disable_progress_bars()
    tqdm.__init__ = functools.partialmethod(tqdm_init, disable=True)
    try:
        yield
    finally:
        tqdm.__init__ = tqdm_init
        if not bars:
            datasets.enable_progress_bars()
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved_flags
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class HarnessTasks:
    """Tasks ready to run: their names, the harness's loaded tasks (``TaskManager.load``: their
    datasets read) and the shipped tasks' ``tasks.json`` (chance levels)."""

    names: list[str]
    task_dict: dict
    manifest: dict[str, dict]


def find_tasks(settings: HarnessSettings, setting: str = "harness") -> HarnessTasks:
    """Check ``settings`` (:meth:`HarnessSettings.check`), build the shipped tasks if asked for,
    find every task and load its data, offline, before any model is loaded. Tasks without a
    ``num_fewshot`` run zero-shot, as the harness's ``simple_evaluate`` does.

    Raises:
        ConfigError: an unknown task name (the shipped ones listed), a task whose data would
            have to be downloaded, or settings that cannot run.
    """
    settings.check(setting)
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    folders, manifest = [], {}
    names = [name for name in settings.tasks if name != SHIPPED]
    if settings.wants_shipped():
        shipped = shipped_task_folder(settings)
        manifest = json.loads((shipped / "tasks.json").read_text())
        folders.append(str(shipped))
        if SHIPPED in settings.tasks:
            names = [*SHIPPED_TASKS, *(name for name in names if name not in SHIPPED_TASKS)]
    if settings.include_path:
        folders.append(str(Path(settings.include_path).expanduser()))
    with offline():
        manager = TaskManager(include_path=folders or None, include_defaults=False)
        if any(name not in manager.all_tasks for name in names):
            manager = TaskManager(include_path=folders or None)  # with the harness's own tasks: about 10 s to index
        unknown = [name for name in names if name not in manager.all_tasks]
        if unknown:
            raise ConfigError(
                f"{setting}.tasks: unknown task(s) {', '.join(unknown)}. The framework ships {SHIPPED} = {', '.join(SHIPPED_TASKS)}; "
                f"your own task YAMLs are read from {setting}.include_path=<folder>; `lm-eval ls tasks` lists the harness's."
            )
        try:
            task_dict = manager.load(names)  # {"tasks": {name: Task}, "groups": ..., "group_map": ...}, data loaded
        except ConnectionError as error:
            raise ConfigError(
                f"{setting}.tasks={names}: a task needs data from the Hugging Face Hub, and the harness runs offline "
                f"(HF_HUB_OFFLINE=1): {str(error).splitlines()[0]}. Give tasks whose YAML reads local files "
                "(dataset_path: json with data_files)."
            ) from None
    for task in task_dict["tasks"].values():  # as the harness's simple_evaluate prepares them
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)
    return HarnessTasks(names, task_dict, manifest)


def run_tasks(model, tasks: HarnessTasks, limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate ``model`` (a :class:`~framework.harness.model.HarnessModel`) on ``tasks``
    (the harness's ``evaluate``: no reseeding of the process's random generators), at most
    ``limit`` items each.

    Returns:
        ``{task or group: {metric: value, ..., "items": n}}`` with the harness's metric names
        (``acc``, ``acc_norm``, ``perplexity``; ``<metric>,<filter>`` where a task filters its
        answers); ``items`` for tasks; a shipped task adds ``chance`` and ``p_value`` (one-sided
        exact binomial test of its ``acc`` against chance).
    """
    from lm_eval.evaluator import evaluate

    with offline():
        output = evaluate(lm=model, task_dict=tasks.task_dict, limit=limit, bootstrap_iters=0, log_samples=False, verbosity="WARNING")
    results = {}
    for name in tasks.names:
        values = {
            metric.removesuffix(",none"): value
            for metric, value in output["results"][name].items()
            if metric not in ("alias", "sample_len") and "_stderr," not in metric and isinstance(value, (int, float))
        }
        if name in output["n-samples"]:
            values["items"] = int(output["n-samples"][name]["effective"])
        if name in tasks.manifest:
            chance = tasks.manifest[name]["chance"]
            values.update(chance=chance, p_value=binomial_p_value(round(values["acc"] * values["items"]), values["items"], chance))
        results[name] = values
    return results
