"""The preparation ``benchmarks/prepare.py`` times, written directly on datatrove and
``tokenizers`` (no ``framework`` import): the reference the framework's pipeline is compared to.

    python benchmarks/prepare_reference.py INPUT_DIR WORK_DIR [--tasks 8] [--workers 2] [--sample-bytes 10000000]

Reads ``INPUT_DIR/*.jsonl``; cleans (CRLF and CR to LF, Unicode NFC, control characters
removed), keeps documents of 100 to 1,000,000 characters, removes near duplicates with
datatrove's four MinHash stages at its default parameters (5-grams, 14 buckets of 8 hashes),
trains a 4096-id byte-level BPE on the first ``--sample-bytes`` of the training split, and
tokenizes each split in batches of 1,000 documents (1 % of documents, by the SHA-256 of the whitespace-normalized text, to
``val``) into datatrove ``.ds`` shards under ``WORK_DIR/tokens/<split>``. Prints one JSON line:
seconds and the tokens of each split.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import time
import unicodedata
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer
from datatrove.pipeline.writers import JsonlWriter
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"
VAL_FRACTION = 0.01
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SAFE_CUT = re.compile(r"\n(?=\S)")  # cutting here leaves GPT-2's pre-tokenization of the text unchanged


class Clean(PipelineStep):
    name = "clean"

    def run(self, data, rank: int = 0, world_size: int = 1):
        for document in data:
            text = document.text.replace("\r\n", "\n").replace("\r", "\n")
            document.text = CONTROL.sub("", unicodedata.normalize("NFC", text))
            if document.text:
                yield document


def is_val(text: str) -> bool:
    digest = hashlib.sha256(" ".join(unicodedata.normalize("NFC", text).split()).encode()).digest()
    return int.from_bytes(digest[:8], "big") < VAL_FRACTION * 2.0**64


def train_tokenizer(documents: Path, sample_bytes: int, output: Path) -> None:
    def texts():
        remaining = sample_bytes
        for path in sorted(documents.glob("*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as file:
                for line in file:
                    text = json.loads(line)["text"]
                    if is_val(text):
                        continue
                    yield text + "\n\n"
                    remaining -= len(text.encode()) + 2
                    if remaining <= 0:
                        return

    def sample(size: int = 1 << 16):
        """The sample as one text, in pieces of about ``size`` characters."""
        pending = ""
        for text in texts():
            pending += text
            while len(pending) > size and (cut := SAFE_CUT.search(pending, size)):
                yield pending[: cut.start()]
                pending = pending[cut.start() :]
        yield pending

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096, min_frequency=2, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(sample(), trainer=trainer)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(output / "tokenizer.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-bytes", type=int, default=10_000_000)
    args = parser.parse_args()
    work, tasks, workers = args.work_dir, args.tasks, args.workers
    config = MinhashConfig()

    def run(name: str, pipeline: list, stage_tasks: int = tasks) -> None:
        LocalPipelineExecutor(pipeline, tasks=stage_tasks, workers=min(workers, stage_tasks), logging_dir=str(work / "logs" / name)).run()

    start = time.perf_counter()
    run(
        "filter",
        [
            JsonlReader(str(args.input_dir), glob_pattern="*.jsonl"),
            Clean(),
            LambdaFilter(lambda document: 100 <= len(document.text) <= 1_000_000),
            JsonlWriter(str(work / "filtered")),
        ],
    )
    run("signature", [JsonlReader(str(work / "filtered")), MinhashDedupSignature(str(work / "signatures"), config)])
    run("buckets", [MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)], config.num_buckets)
    run("cluster", [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)], 1)
    run(
        "dedup",
        [JsonlReader(str(work / "filtered")), MinhashDedupFilter(str(work / "remove")), JsonlWriter(str(work / "deduplicated"))],
    )
    train_tokenizer(work / "deduplicated", args.sample_bytes, work / "tokenizer")
    for split in ("train", "val"):
        run(
            f"tokenize-{split}",
            [
                JsonlReader(str(work / "deduplicated")),
                LambdaFilter(lambda document, split=split: is_val(document.text) == (split == "val")),
                DocumentTokenizer(
                    str(work / "tokens" / split),
                    tokenizer_name_or_path=str(work / "tokenizer" / "tokenizer.json"),
                    eos_token=EOS,
                    save_filename=split,
                    shuffle_documents=False,
                    batch_size=1000,
                ),
            ],
        )
    seconds = time.perf_counter() - start
    tokens = {split: sum(path.stat().st_size for path in (work / "tokens" / split).glob("*.ds")) // 2 for split in ("train", "val")}
    print(json.dumps({"seconds": seconds, "tokens": tokens}))


if __name__ == "__main__":
    main()
