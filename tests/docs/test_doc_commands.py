"""The commands of the documentation run as written: every ```bash block of README.md and
docs/**/*.md runs unless a ``<!-- docs-test: skip: <reason> -->`` line stands directly above it
(the directive grammar: tests/docs/doc_blocks.py).

The blocks of one page run in order, each with ``bash -euo pipefail``, in one fresh directory laid
out like the project root: copies of conf/, experiments/, benchmarks/, docs/, framework/, tests/ and
the top-level files (so nothing a block writes reaches the project), ``../shared/data`` (the real
datasets), ``.venv`` (this environment), one data and token cache for all pages, and W&B offline
where a page looks at W&B's files (else disabled, see :func:`wandb_mode`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from doc_blocks import PROJECT_ROOT, Block, Page, documentation_pages, parse_page, read_page

from framework.cpus import usable_cpus

BLOCK_TIMEOUT_S = 600
OUTPUT_LINES = 40
COPIED_DIRECTORIES = ("conf", "experiments", "benchmarks", "docs", "framework", "tests")
COPIED_FILES = ("pyproject.toml", "Makefile", "mkdocs.yml", "README.md", ".importlinter")
# Set in every block's environment: a block that runs the test suite does not run the pages again.
NESTED = "LM_FRAMEWORK_DOCS_TEST"

PAGES = {path: read_page(path) for path in documentation_pages()}


def test_blocks_are_runnable_or_skipped_with_a_reason():
    """Every bash block runs or is skipped with a reason; the fences and directives are valid."""
    blocks = [block for page in PAGES.values() for block in page.blocks]
    bash = [block for block in blocks if block.is_bash]
    run = [block for block in bash if block.runs]
    skipped = Counter(block.skip for block in bash if block.skip is not None)
    assert len(bash) == len(run) + sum(skipped.values())
    print(f"\n{len(PAGES)} pages, {len(bash)} bash blocks: {len(run)} run, {sum(skipped.values())} skipped")
    for reason, count in skipped.most_common():
        print(f"  {count:3d} skipped: {reason}")
    print(
        "  other blocks: "
        + ", ".join(
            f"{language or 'bare'} {count}" for language, count in Counter(b.language for b in blocks if not b.is_bash).most_common()
        )
    )
    problems = [str(problem) for page in PAGES.values() for problem in page.problems]
    assert not problems, "Documentation blocks to fix:\n" + "\n".join(problems)


PAGE = r"""
<!-- docs-test: write conf/experiment/mine.yaml -->
```yaml
# @package _global_
trainer: {max_steps: 3}
```

<!-- docs-test: framework.train += trainer.max_steps=2 ; benchmarks/muon.py += --steps 1 -->
```bash
python -m framework.train experiment=mine \
  model=lstm   # a comment
lmf-train 2>&1 | tail -2 && python benchmarks/muon.py
cat > x.yaml <<'EOF'
python -m framework.train inside=a_here_document
EOF
```

<!-- docs-test: skip: needs a CUDA GPU -->
```bash
python -m framework.train trainer=gpu hydra.run.dir=logs/runs/<name>
```
"""
RUN_AS = r"""python -m framework.train experiment=mine \
  model=lstm trainer.max_steps=2   # a comment
lmf-train trainer.max_steps=2 2>&1 | tail -2 && python benchmarks/muon.py --steps 1
cat > x.yaml <<'EOF'
python -m framework.train inside=a_here_document
EOF
"""


def test_directives_apply_to_the_blocks_below():
    page = parse_page("page.md", PAGE)
    write, run, skipped = page.blocks
    assert page.problems == []
    assert (write.write, write.language, write.runs) == ("conf/experiment/mine.yaml", "yaml", False)
    assert run.runs and not skipped.runs and skipped.skip == "needs a CUDA GPU"
    assert run.command() == RUN_AS


@pytest.mark.parametrize(
    "markdown, problem",
    [
        ("```sh\nls\n```\n", "```sh fence"),
        ("```console\n$ ls\n```\n", "```console fence"),
        ("<!-- docs-test: skip: -->\n```bash\nls\n```\n", "skip needs a reason"),
        ("<!-- docs-test: skip -->\n```bash\nls\n```\n", "unknown directive"),
        ("<!-- docs-test: framework.evaluate += x=1 -->\n```bash\npython -m framework.train\n```\n", "no command of the block runs"),
        ("<!-- docs-test: write a.yaml -->\n```bash\nls\n```\n", "not to bash blocks"),
        ("<!-- docs-test: write ../a.yaml -->\n```yaml\na: 1\n```\n", "must be relative"),
        ("<!-- docs-test: skip: GPU -->\n\n```bash\nls\n```\n", "directly above a fence"),
        ("```bash\npython -m framework.evaluate run_dir=logs/runs/<run>\n```\n", "placeholder(s) <run>"),
        ("```bash\n$ python -m framework.train\n```\n", "a prompt ($)"),
        ("```bash\nls\n", "never closed"),
        ("```bash\npip install -e '.[eval]'\n```\n", "pip install -e: installs into the environment"),
        ("```bash\nmake train   # set-up\n```\n", "make train: installs into the environment"),
    ],
)
def test_problems_are_found(markdown, problem):
    problems = [str(found) for found in parse_page("page.md", markdown).problems]
    assert any(problem in found for found in problems), problems


@pytest.fixture(scope="session")
def docs_cache(harness_cache: Path) -> Path:
    """The cache every page shares (``LM_FRAMEWORK_CACHE``: datasets, token caches, harness tasks),
    the one the harness tests build their tasks in."""
    return harness_cache


def project_copy(directory: Path, shared_data: Path) -> Path:
    """A directory laid out like the project root inside ``directory``, with ``../shared/data``."""
    root = directory / "project"
    root.mkdir()
    for name in COPIED_DIRECTORIES:
        shutil.copytree(PROJECT_ROOT / name, root / name, symlinks=True, ignore=shutil.ignore_patterns("site", ".pytest_cache"))
    for name in COPIED_FILES:
        if (PROJECT_ROOT / name).is_file():
            shutil.copy2(PROJECT_ROOT / name, root / name)
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (directory / "shared").mkdir()
    (directory / "shared" / "data").symlink_to(shared_data, target_is_directory=True)
    return root


def wandb_mode(page: Page) -> str:
    """W&B offline for a page whose commands look at W&B files (``wandb leet``, ``logger=wandb``
    set explicitly), else disabled: the training commands run as written, without the 1-2 s of
    starting and closing W&B's service each."""
    bash = "\n".join(block.text for block in page.blocks if block.is_bash and block.runs)
    return "offline" if re.search(r"(^|\s)wandb\s|logger=wandb|/wandb/", bash) else "disabled"


def block_environment(page: Page, cache: Path) -> dict[str, str]:
    environment = {**os.environ, "WANDB_MODE": wandb_mode(page), "LM_FRAMEWORK_CACHE": str(cache), NESTED: "1"}
    # each of the PARALLEL_PAGES pages gets its share of the cores (torch and BLAS read this at start)
    environment["OMP_NUM_THREADS"] = str(max(1, usable_cpus() // PARALLEL_PAGES))
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def write_file(root: Path, block: Block) -> None:
    target = (root / block.write).resolve()
    if not target.is_relative_to(root.resolve()):
        pytest.fail(f"{block.page}:{block.line}: docs-test: write {block.write} leaves the page's directory", pytrace=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text, encoding="utf-8")


def run_block(block: Block, root: Path, environment: dict[str, str], timeout: float = BLOCK_TIMEOUT_S) -> None:
    """Run one bash block in ``root``; fail with the page, line, command and the output's end."""
    command = block.command()
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=root,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, ended as a whole on a timeout
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        outcome = f"exit status {process.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        outcome = f"timed out after {timeout:.0f} s"
    print(f"{block.page}:{block.line}: {time.monotonic() - started:.1f} s")
    if process.returncode != 0:
        tail = "\n".join(output.splitlines()[-OUTPUT_LINES:])
        pytest.fail(
            f"{block.page}, the bash block at line {block.line} failed ({outcome}).\n"
            f"Command (run in {root}):\n{_indent(command)}\n"
            f"Last {OUTPUT_LINES} lines of its output:\n{_indent(tail)}",
            pytrace=False,
        )


def run_page(page: Page, directory: Path, shared_data: Path, cache: Path) -> None:
    """The page's blocks in order: files written, bash blocks run, in one fresh project copy."""
    root = project_copy(directory, shared_data)
    environment = block_environment(page, cache)
    for block in page.blocks:
        if block.write is not None and not block.is_bash:
            write_file(root, block)
        elif block.runs:
            run_block(block, root, environment)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


# Pages run two at a time: most of a command's time is the interpreter importing torch and
# Lightning on one core, so two pages share a 2-core machine with little contention.
PARALLEL_PAGES = 2
RUNNABLE = [path for path, page in PAGES.items() if page.runs]


@pytest.fixture(scope="session")
def page_runs(tmp_path_factory, shared_data: Path, docs_cache: Path):
    """Every runnable page started on :data:`PARALLEL_PAGES` workers, the pages with the most
    blocks first; each page's test waits for its own."""
    if os.environ.get(NESTED):
        pytest.skip("inside a documentation block (a block that runs the test suite)")
    pool = ThreadPoolExecutor(max_workers=PARALLEL_PAGES)
    order = sorted(RUNNABLE, key=lambda path: -sum(block.runs for block in PAGES[path].blocks))
    futures = {path: pool.submit(run_page, PAGES[path], tmp_path_factory.mktemp("page"), shared_data, docs_cache) for path in order}
    yield futures
    pool.shutdown(cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE)
def test_page_commands_run(page: str, page_runs):
    page_runs[page].result()
