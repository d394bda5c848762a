"""A whole preparation on real text with injected duplicates, then training on its output."""

import gzip
import json
import math
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from framework.cli.precheck import check_command_line
from framework.errors import ConfigError
from framework.prepare.pipeline import prepare
from framework.prepare.report import print_stage
from framework.run.training import train

pytestmark = pytest.mark.slow

SETTINGS = ["tokenizer=char", "executor.tasks=2", "executor.workers=1", "output.val_fraction=0.05"]


def counters(manifest: dict) -> list:
    """Each stage's step counters, without the times."""
    return [[{key: value for key, value in step.items() if key != "seconds"} for step in stage["steps"]] for stage in manifest["stages"]]


def normalized(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare_path):
    """Tiny Shakespeare's paragraphs as two JSONL files, the second ending with 40 exact copies
    (whitespace changed) of paragraphs of the first."""
    root = tmp_path_factory.mktemp("prepare")
    paragraphs = [text for text in shakespeare_path.read_text()[:300_000].split("\n\n") if text.strip()]
    half = len(paragraphs) // 2
    kept = [text for text in paragraphs if len(text) >= 100]
    copies = [text.replace("\n", "  \n") for text in kept[:400:10]]
    (root / "input").mkdir()
    for name, texts in (("a.jsonl", paragraphs[:half]), ("b.jsonl", paragraphs[half:] + copies)):
        (root / "input" / name).write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return root, paragraphs + copies


def test_exact_dedup_removes_every_repeat_and_the_dataset_is_reproducible(corpus, prepare_config, tmp_path):
    root, documents = corpus
    cfg = prepare_config([f"input.path={root / 'input' / '*.jsonl'}", "prepare/filters=[clean,length]", *SETTINGS], tmp_path)
    dataset = prepare(cfg).folder
    manifest = json.loads((dataset / "manifest.json").read_text())

    long_enough = [text for text in documents if len(text) >= 100]  # the length filter's min_chars
    distinct = list(dict.fromkeys(normalized(text) for text in long_enough))
    assert len(long_enough) - len(distinct) >= 40  # the injected copies, and repeats of the play's own
    (stage,) = [stage for stage in manifest["stages"] if stage["stage"] == "exact-filter"]
    assert stage["steps"][1]["dropped"] == len(long_enough) - len(distinct)
    splits = manifest["splits"]
    assert splits["train"]["documents"] + splits["val"]["documents"] == len(distinct)
    first_copies: dict[str, str] = {}
    for text in long_enough:
        first_copies.setdefault(normalized(text), text)
    # the first copy in input order is kept; a document is its characters and one end-of-text token
    assert splits["train"]["tokens"] + splits["val"]["tokens"] == sum(len(text) + 1 for text in first_copies.values())

    again = prepare(
        prepare_config(
            [f"input.path={root / 'input' / '*.jsonl'}", "prepare/filters=[clean,length]", *SETTINGS, f"output.dir={tmp_path / 'again'}"],
            tmp_path / "other",
        )
    ).folder
    for split in ("train", "val"):
        for shard in splits[split]["shards"]:
            assert (dataset / split / shard).read_bytes() == (again / split / shard).read_bytes()
    assert json.loads((again / "manifest.json").read_text())["hash"] == manifest["hash"]

    before = {path: path.stat().st_mtime_ns for path in dataset.rglob("*")}
    assert prepare(cfg).folder == dataset  # unchanged: nothing runs, nothing is rewritten
    assert {path: path.stat().st_mtime_ns for path in dataset.rglob("*")} == before
    with pytest.raises(ConfigError, match="holds a different preparation"):
        prepare(
            prepare_config(
                [
                    f"input.path={root / 'input' / '*.jsonl'}",
                    "prepare/filters=[clean,length]",
                    *SETTINGS,
                    "output.val_fraction=0.1",
                    f"output.dir={dataset}",
                ],
                tmp_path,
            )
        )


def test_training_on_a_prepared_dataset_learns_and_reads_every_shard(corpus, prepare_config, make_config, tmp_path):
    root, _ = corpus
    dataset = prepare(
        prepare_config([f"input.path={root / 'input' / '*.jsonl'}", "prepare/filters=[clean,length]", *SETTINGS], tmp_path)
    ).folder
    cfg = make_config(
        [
            "data=prepared",
            f"data.path={dataset}",
            "logger=csv",
            "callbacks.progress=null",
            "data.block_size=32",
            "data.batch_size=16",
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=32",
            "trainer.max_steps=200",
            "trainer.val_check_interval=200",
            "scheduler.warmup_steps=5",
            "optimizer.lr=1e-2",
            "sample.max_new_tokens=5",
        ]
    )
    result = train(cfg)
    manifest = json.loads((dataset / "manifest.json").read_text())
    vocab_size = manifest["tokenizer"]["vocab_size"]
    assert result.trainer.lightning_module.model.config.vocab_size == vocab_size
    shards = [np.fromfile(dataset / "train" / name, dtype=np.uint16) for name in manifest["splits"]["train"]["shards"]]
    frequencies = np.bincount(np.concatenate(shards), minlength=vocab_size) / sum(len(shard) for shard in shards)
    unigram_entropy = -(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0])).sum()
    assert result.metrics["val/loss"] < unigram_entropy - 0.1  # it learned more than character frequencies
    train_tokens = result.trainer.datamodule.train_set.tokens
    assert [len(shard) for shard in shards if len(shard)] == [len(shard) for shard in train_tokens.shards] and len(train_tokens.shards) == 2
    joined = np.concatenate(shards)
    boundary = len(shards[0])
    positions = np.arange(boundary - 20, boundary + 20)[None, :] + np.arange(3)[:, None]  # windows across the shard boundary
    assert np.array_equal(train_tokens[positions], joined[positions])
    assert np.array_equal(train_tokens[boundary - 5 : boundary + 5], joined[boundary - 5 : boundary + 5])
    assert (joined == manifest["tokenizer"]["eos_id"]).sum() == manifest["splits"]["train"]["documents"]


def word_ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_minhash_removes_near_copies_and_keeps_distinct_passages(shakespeare_path, prepare_config, tmp_path):
    words = shakespeare_path.read_text().split()
    passages = [" ".join(words[start : start + 400]) for start in range(0, 150 * 400, 400)]
    rng = np.random.default_rng(0)
    near_copies = []
    for passage in passages[:80]:
        copy = passage.split()
        for position in rng.choice(len(copy), size=len(copy) // 50, replace=False):  # exactly 2 % of the words
            copy[position] = words[rng.integers(len(words))]
        near_copies.append(" ".join(copy))
    threshold = (1 / 14) ** (1 / 8)  # the LSH threshold of 14 buckets of 8 hashes, about 0.72
    similarities = [len(word_ngrams(a) & word_ngrams(b)) / len(word_ngrams(a) | word_ngrams(b)) for a, b in zip(passages, near_copies)]
    assert min(similarities) > threshold  # every injected pair is a true near duplicate
    assert max(len(word_ngrams(a) & word_ngrams(b)) for a in passages[:20] for b in passages[20:40]) == 0
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in passages + near_copies))

    dataset = prepare(
        prepare_config([f"input.path={tmp_path / 'docs.jsonl'}", "prepare/dedup=minhash", "prepare/filters=[clean]", *SETTINGS], tmp_path)
    ).folder
    manifest = json.loads((dataset / "manifest.json").read_text())
    (stage,) = [stage for stage in manifest["stages"] if stage["stage"] == "minhash-filter"]
    removed = stage["steps"][1]["dropped"]
    assert removed >= 0.95 * len(near_copies)  # recall
    kept = manifest["splits"]["train"]["documents"] + manifest["splits"]["val"]["documents"]
    assert kept == len(passages) + len(near_copies) - removed
    (deduplicated,) = [stage["directory"] for stage in manifest["stages"] if stage["stage"] == "minhash-filter"]
    kept_texts = {json.loads(line)["text"] for path in Path(deduplicated, "output").glob("*.jsonl.gz") for line in gzip.open(path, "rt")}
    assert all(passage in kept_texts or copy in kept_texts for passage, copy in zip(passages, near_copies))  # one of each pair stays
    assert set(passages[len(near_copies) :]) <= kept_texts  # passages without a copy all stay


def test_three_sources_share_one_tokenizer_and_train_as_a_weighted_mixture(
    shared_data, shakespeare_path, prepare_config, make_config, tmp_path
):
    import csv
    import sysconfig

    (tmp_path / "plays.txt").write_text(shakespeare_path.read_text()[:150_000])
    reviews = [line.split("\t")[0] for line in (shared_data / "sst2" / "train.tsv").read_text().splitlines()[1:3000]]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps({"sentence": text}) + "\n" for text in reviews))
    (tmp_path / "code").mkdir()
    for name in ("textwrap.py", "shlex.py", "fnmatch.py", "glob.py"):
        (tmp_path / "code" / f"{name}.txt").write_text((Path(sysconfig.get_paths()["stdlib"]) / name).read_text())
    parent = prepare(
        prepare_config(
            [
                f"+input.sources.plays.path={tmp_path / 'plays.txt'}",
                "+input.sources.plays.txt_documents=paragraphs",
                f"+input.sources.reviews.path={tmp_path / 'reviews.jsonl'}",
                "+input.sources.reviews.text_field=sentence",
                f"+input.sources.code.path={tmp_path / 'code' / '*.txt'}",
                "+input.sources.code.txt_documents=paragraphs",
                "prepare/filters=[clean]",
                *SETTINGS,
            ],
            tmp_path,
        )
    ).folder
    manifests = {name: json.loads((parent / name / "manifest.json").read_text()) for name in ("plays", "reviews", "code")}
    assert len({manifest["tokenizer"]["sha256"] for manifest in manifests.values()}) == 1
    assert manifests["reviews"]["splits"]["train"]["documents"] + manifests["reviews"]["splits"]["val"]["documents"] == len(set(reviews))

    weights = {"plays": 0.5, "reviews": 0.2, "code": 0.3}
    mixture = ",".join(f"{{path:{parent / name},weight:{weight}}}" for name, weight in weights.items())
    cfg = make_config(
        [
            "data=prepared",
            f"data.mixture=[{mixture}]",
            "logger=csv",
            "callbacks.progress=null",
            "data.block_size=32",
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=32",
            "trainer.max_steps=20",
            "trainer.val_check_interval=20",
            "scheduler.warmup_steps=2",
            "sample.max_new_tokens=5",
        ]
    )
    result = train(cfg)
    assert {f"val/{name}/loss" for name in weights} <= set(result.metrics)
    with (Path(cfg.paths.run_dir) / "metrics.csv").open() as file:
        (row,) = [row for row in csv.DictReader(file) if row.get("val/loss")]
    val_sets = result.trainer.datamodule.val_sets
    tokens = [len(dataset) * 32 for dataset in val_sets]  # each window's 32 targets
    whole = sum(float(row[f"val/{name}/loss"]) * count for name, count in zip(weights, tokens)) / sum(tokens)
    assert float(row["val/loss"]) == pytest.approx(whole, rel=1e-4)  # the token-weighted mean of the sources (float32 sums)

    other = prepare(
        prepare_config(
            [
                f"input.path={tmp_path / 'plays.txt'}",
                "input.txt_documents=paragraphs",
                "tokenizer=bpe",
                "tokenizer.vocab_size=300",
                *SETTINGS[1:],
            ],
            tmp_path / "bpe",
        )
    ).folder
    cfg.data.mixture = [{"path": str(parent / "plays"), "weight": 1}, {"path": str(other), "weight": 1}]
    cfg.paths.run_dir = str(tmp_path / "mixed_tokenizers")
    with pytest.raises(ConfigError, match="data.mixture mixes datasets with different tokenizers"):
        train(cfg)
    with pytest.raises(ConfigError, match=r"data=prepared takes its tokenizer from the dataset .* drop tokenizer=char"):
        check_command_line("train", ["data=prepared", f"data.path={other}", "tokenizer=char"])


def test_filters_that_remove_every_document_are_named(shakespeare_path, prepare_config, tmp_path):
    from framework.errors import DataError

    (tmp_path / "verse.txt").write_text(shakespeare_path.read_text()[:20_000])
    cfg = prepare_config(
        [
            f"input.path={tmp_path / 'verse.txt'}",
            "input.txt_documents=paragraphs",
            "prepare/filters=[clean,length]",
            "filters.length.min_chars=5000",
            *SETTINGS,
        ],
        tmp_path,
    )
    with pytest.raises(
        DataError, match=r"Every document of verse was removed by the filters: the last ones by FILTER: length \(\d+ of \d+ dropped\)"
    ):
        prepare(cfg)


def test_datatrove_logs_go_to_files_and_not_to_the_console(shakespeare_path, prepare_config, tmp_path, capfd):
    (tmp_path / "verse.txt").write_text(shakespeare_path.read_text()[:20_000])
    cfg = prepare_config([f"input.path={tmp_path / 'verse.txt'}", "input.txt_documents=paragraphs", *SETTINGS], tmp_path)
    prepare(cfg, print_stage)
    console = capfd.readouterr().err
    task_logs = sorted(tmp_path.rglob("logs/logs/task_*.log"))
    filter_logs = [path.read_text() for path in task_logs if "/filter-" in str(path)]
    assert len(filter_logs) == 2 and all("PIPELINE" in log and "Processing done" in log for log in filter_logs)
    for line in ("| INFO", "| SUCCESS", "PIPELINE", "Stats", "tasks completed", "| WARNING"):  # only in the task logs
        assert line not in console
    # task 1 of 2 gets no file (one input file): its "No files found" warnings are not counted
    stages = [line for line in console.splitlines() if line.startswith("[")]
    assert [line.split(" in ")[0] for line in stages] == [
        "[1/8] filter",
        "[2/8] exact-signature",
        "[3/8] exact-find",
        "[4/8] exact-filter",
        "[5/8] tokenizer",
        "[6/8] tokenize-train",
        "[7/8] tokenize-val",
        "[8/8] manifest",
    ]
    assert not any("warning" in line for line in stages)
    assert sum("No files found" in path.read_text() for path in task_logs) == 4  # task 1 of the four stages after the filter


def test_a_preparation_killed_in_the_middle_completes_on_the_next_run(shakespeare_path, prepare_config, project_root, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    paragraphs = [text for text in shakespeare_path.read_text().split("\n\n") if text.strip()]
    (tmp_path / "input").mkdir()
    for index in range(4):
        (tmp_path / "input" / f"{index}.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in paragraphs[index::4]))
    settings = [
        f"input.path={tmp_path / 'input' / '*.jsonl'}",
        "prepare/filters=[clean,length,gopher_repetition]",
        "tokenizer=char",
        "executor.tasks=4",
        "executor.workers=1",
    ]
    killed_cache = tmp_path / "killed" / "cache"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "framework.prepare",
            *settings,
            f"paths.cache_dir={killed_cache}",
            f"output.dir={tmp_path / 'killed' / 'dataset'}",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(project_root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: datatrove's helper processes die with it
    )
    deadline = time.monotonic() + 120
    while not list(killed_cache.glob("prepare/input/filter-*/logs/completions/00000")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # as a scheduler ends a job: every process at once
    process.wait()
    (completions,) = killed_cache.glob("prepare/input/filter-*/logs/completions")
    assert 1 <= len(list(completions.iterdir())) < 4  # killed inside the first stage

    resumed = prepare(prepare_config([*settings, f"output.dir={tmp_path / 'killed' / 'dataset'}"], tmp_path / "killed")).folder
    whole = prepare(prepare_config([*settings, f"output.dir={tmp_path / 'whole' / 'dataset'}"], tmp_path / "whole")).folder
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (resumed, whole)]
    assert manifests[0]["splits"] == manifests[1]["splits"]
    assert counters(manifests[0]) == counters(manifests[1])
    for split in ("train", "val"):
        for shard in manifests[1]["splits"][split]["shards"]:
            assert (resumed / split / shard).read_bytes() == (whole / split / shard).read_bytes()


def test_a_mixture_run_resumed_from_its_checkpoint_ends_with_the_weights_of_an_uninterrupted_one(
    corpus, prepare_config, make_config, tmp_path
):
    import torch

    from framework.checkpointing import load_checkpoint_file

    root, _ = corpus
    parent = prepare(
        prepare_config(
            [
                "input.path=null",
                f"+input.sources.first.path={root / 'input' / 'a.jsonl'}",
                f"+input.sources.second.path={root / 'input' / 'b.jsonl'}",
                "prepare/filters=[clean,length]",
                *SETTINGS,
            ],
            tmp_path,
        )
    ).folder
    recipe = [
        "data=prepared",
        f"data.mixture=[{{path:{parent / 'first'},weight:3}},{{path:{parent / 'second'},weight:1}}]",
        "logger=csv",
        "callbacks.progress=null",
        "scheduler=constant",
        "data.block_size=32",
        "data.batch_size=8",
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=32",
        "trainer.val_check_interval=10",
        "sample.max_new_tokens=0",
    ]
    weights = {}
    for name, budgets in (("straight", (20,)), ("resumed", (10, 20))):
        for max_steps in budgets:
            cfg = make_config([*recipe, f"trainer.max_steps={max_steps}"])
            cfg.paths.run_dir = str(tmp_path / name)
            train(cfg)
        weights[name] = load_checkpoint_file(tmp_path / name / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.equal(weights["straight"][key], weights["resumed"][key]) for key in weights["straight"])


def test_a_split_left_empty_is_named_with_the_settings_that_fill_it(shakespeare_path, prepare_config, tmp_path):
    from framework.errors import DataError

    (tmp_path / "play.txt").write_text(shakespeare_path.read_text()[:50_000])  # one document: it lands in one split
    with pytest.raises(DataError, match=r"The (train|val) split of play is empty: .* input.txt_documents=paragraphs"):
        prepare(prepare_config([f"input.path={tmp_path / 'play.txt'}", *SETTINGS], tmp_path))


def test_the_gpt2_124m_recipe_trains_on_a_prepared_corpus_at_a_cpu_size(corpus, prepare_config, make_config, tmp_path):
    root, _ = corpus
    dataset = prepare(
        prepare_config([f"input.path={root / 'input' / '*.jsonl'}", "prepare/filters=[clean,length]", *SETTINGS], tmp_path)
    ).folder
    small = ["model.n_layer=2", "model.n_head=2", "model.n_embd=64", "data.block_size=64", "data.batch_size=4", "data.num_workers=0"]
    cpu = ["trainer.accelerator=cpu", "model.compile=false", "trainer.accumulate_grad_batches=2", "scheduler.warmup_steps=2"]
    short = ["trainer.max_steps=6", "trainer.val_check_interval=12", "trainer.limit_val_batches=2", "logger=csv", "callbacks.progress=null"]
    cfg = make_config(["experiment=gpt2_124m", f"data.path={dataset}", *small, *cpu, *short, "sample.max_new_tokens=5"])
    assert (cfg.optimizer.lr, cfg.scheduler.min_lr, cfg.optimizer.fused, cfg.trainer.precision) == (6e-4, 6e-5, True, "bf16-mixed")
    result = train(cfg)
    model = result.trainer.lightning_module.model
    assert model.config.vocab_size == 50304 and model.config.activation == "gelu_tanh" and model.config.bias
    assert result.trainer.global_step == 6 and result.trainer.accumulate_grad_batches == 2
    assert result.metrics["val/loss"] < math.log(50304)  # below the uniform guess over the padded vocabulary
