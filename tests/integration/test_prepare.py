"""A whole preparation on real text with injected duplicates, then training on its output."""

import json
import unicodedata

import numpy as np
import pytest

from framework.errors import ConfigError
from framework.prepare.pipeline import prepare
from framework.run.training import train

pytestmark = pytest.mark.slow

SETTINGS = ["prepare/filters=[clean,length]", "tokenizer=char", "executor.tasks=2", "executor.workers=1", "output.val_fraction=0.05"]


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
    cfg = prepare_config([f"input.path={root / 'input' / '*.jsonl'}", *SETTINGS], tmp_path)
    dataset = prepare(cfg)
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
        prepare_config([f"input.path={root / 'input' / '*.jsonl'}", *SETTINGS, f"output.dir={tmp_path / 'again'}"], tmp_path / "other")
    )
    for split in ("train", "val"):
        for shard in splits[split]["shards"]:
            assert (dataset / split / shard).read_bytes() == (again / split / shard).read_bytes()
    assert json.loads((again / "manifest.json").read_text())["hash"] == manifest["hash"]

    before = {path: path.stat().st_mtime_ns for path in dataset.rglob("*")}
    assert prepare(cfg) == dataset  # unchanged: nothing runs, nothing is rewritten
    assert {path: path.stat().st_mtime_ns for path in dataset.rglob("*")} == before
    with pytest.raises(ConfigError, match="holds a different preparation"):
        prepare(
            prepare_config(
                [f"input.path={root / 'input' / '*.jsonl'}", *SETTINGS, "output.val_fraction=0.1", f"output.dir={dataset}"], tmp_path
            )
        )


def test_training_on_a_prepared_dataset_learns_and_reads_every_shard(corpus, prepare_config, make_config, tmp_path):
    root, _ = corpus
    dataset = prepare(prepare_config([f"input.path={root / 'input' / '*.jsonl'}", *SETTINGS], tmp_path))
    cfg = make_config(
        [
            "data=prepared",
            f"data.path={dataset}",
            "logger=csv",
            "callbacks.progress_bar=null",
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
    positions = np.arange(len(joined) - 40, len(joined)) - len(shards[0]) + 20  # windows across the shard boundary
    assert np.array_equal(train_tokens[positions], joined[positions])
    assert (joined == manifest["tokenizer"]["eos_id"]).sum() == manifest["splits"]["train"]["documents"]
