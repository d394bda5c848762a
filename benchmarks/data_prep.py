"""Data preparation at scale: a 200 MB corpus through the token cache, and encoding speed.

    python benchmarks/data_prep.py [--megabytes 200] [--vocab-size 8192] [--shared ../shared/data]

1. Writes a corpus of real text (Tiny Shakespeare, the SST-2 sentences and this Python's
   standard library, concatenated in turn until ``--megabytes``) to a temporary directory, and
   one a tenth of that size, the reference for how memory grows with the corpus.
2. Prepares each as ``python -m framework.train`` does (``prepare_corpus``: read, clean and
   split in blocks, train an ``--vocab-size`` byte-level BPE on the train split, encode both
   splits into the cache) in a fresh child process, and prints its wall time, its peak
   resident memory and that peak above the process's own after its imports.
3. Encodes the first ``--encode-megabytes`` of the text three ways with that tokenizer, in
   ``--rounds`` interleaved rounds, and prints median MB/s: HF ``encode_batch`` and
   ``tiktoken`` built from the tokenizer's ranks (``encode_batch``, special tokens allowed, as
   many threads as the framework), both on the framework's chunks, and the framework's
   ``encode_to_file``, checking that all three give identical ids.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from framework.data.sources import StdlibSource
from framework.tokenizer import encode_to_file, safe_chunks, token_dtype
from framework.tokenizer.tiktoken_bridge import tiktoken_encoding

PREPARE = """
import json, resource, sys, time
from framework.data import prepare_corpus
from framework.data.sources import TextFilesSource
from framework.tokenizer import train_bpe_tokenizer
corpus, cache, vocab_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
imported_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
entry = prepare_corpus(
    TextFilesSource(corpus).read(), ["newlines", "nfc"], 0.1,
    lambda text: train_bpe_tokenizer(text, vocab_size=vocab_size), {"vocab_size": vocab_size}, cache,
)
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "directory": str(entry.directory), "tokens": entry.meta["tokens"], "imported_kb": imported_kb, "peak_kb": peak_kb}))
"""


def write_corpus(path: Path, megabytes: float, shared: Path) -> int:
    """Concatenate real texts in turn into ``path`` until it holds ``megabytes`` MB; its size in bytes."""
    sst2 = "\n".join(line.split("\t")[0] for line in (shared / "sst2" / "train.tsv").read_text().splitlines()[1:])
    texts = [(shared / "tinyshakespeare" / "input.txt").read_text(), sst2, "\n".join("".join(d.blocks()) for d in StdlibSource().read())]
    size, target = 0, int(megabytes * 1e6)
    with open(path, "w", encoding="utf-8") as file:
        while size < target:
            for text in texts:
                size += file.write((text + "\n")[: max(target - size, 0)])
    return path.stat().st_size


def prepare_in_child(corpus: Path, cache: Path, vocab_size: int) -> dict:
    """Run the preparation in a fresh process; its result, with the process's peak RSS after
    its imports (``imported_kb``) and after the preparation (``peak_kb``)."""
    output = subprocess.run(
        [sys.executable, "-c", PREPARE, str(corpus), str(cache), str(vocab_size)], check=True, capture_output=True, text=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--encode-megabytes", type=float, default=20, help="text encoded by each of the three encoders")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        for megabytes in (args.megabytes / 10, args.megabytes):  # the smaller one is the reference for memory growth
            corpus = Path(scratch) / f"corpus-{megabytes:g}MB.txt"
            size = write_corpus(corpus, megabytes, args.shared)
            result = prepare_in_child(corpus, Path(scratch) / "cache", args.vocab_size)
            tokens = sum(result["tokens"].values())
            print(
                f"prepare_corpus: {size / 1e6:.1f} MB corpus -> {tokens:,} tokens in {result['seconds']:.1f} s "
                f"({size / 1e6 / result['seconds']:.2f} MB/s, tokenizer training included); peak RSS {result['peak_kb'] / 1024:,.0f} MB, "
                f"{(result['peak_kb'] - result['imported_kb']) / 1024:,.0f} MB above the process after its imports"
            )

        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(result["directory"]) / "tokenizer.json"))
        with corpus.open(encoding="utf-8") as file:
            text = file.read(int(args.encode_megabytes * 1e6))
        megabytes = len(text.encode("utf-8")) / 1e6
        chunks = list(safe_chunks(text))  # the framework's chunks
        encoding = tiktoken_encoding(tokenizer)
        assert encoding is not None, "the prepared tokenizer should be a plain byte-level BPE"
        threads = len(os.sched_getaffinity(0))  # what encode_to_file uses
        dtype = token_dtype(tokenizer.get_vocab_size())
        ours_path = Path(scratch) / "ids.bin"
        encoders = {
            "HF tokenizers encode_batch": lambda: [e.ids for e in tokenizer.encode_batch(chunks)],
            "tiktoken encode_batch": lambda: encoding.encode_batch(chunks, allowed_special="all", num_threads=threads),
            "framework encode_to_file": lambda: encode_to_file(tokenizer, text, ours_path),
        }
        seconds, outputs = {name: [] for name in encoders}, {}
        for _ in range(args.rounds):  # interleaved, so drifts in the machine's speed hit all three alike
            for name, encode in encoders.items():
                start = time.perf_counter()
                outputs[name] = encode()
                seconds[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(times) for name, times in seconds.items()}
        ours = np.fromfile(ours_path, dtype=dtype)
        identical = all(
            np.array_equal(ours, np.concatenate([np.asarray(ids, dtype=dtype) for ids in outputs[name]]))
            for name in ("HF tokenizers encode_batch", "tiktoken encode_batch")
        )
        print(f"encoding {megabytes:.1f} MB, {ours.size:,} tokens, medians of {args.rounds} interleaved rounds; identical ids: {identical}")
        for name, median in medians.items():
            print(f"  {name:32s} {megabytes / median:6.2f} MB/s  ({medians['tiktoken encode_batch'] / median:.2f}x tiktoken's speed)")


if __name__ == "__main__":
    main()
