"""Corpus preparation at scale (``python -m framework.prepare``) on a corpus built from real text.

    python benchmarks/prepare.py scale [--size-mb 200]        # 1 vs 2 workers, peak RSS, MinHash recall and precision
    python benchmarks/prepare.py reference [--size-mb 20] [--rounds 7]   # the framework vs benchmarks/prepare_reference.py
    python benchmarks/prepare.py memory [--sizes 200 1000]    # peak RSS by corpus size, without MinHash

The corpus (JSONL, ``--files`` files) is cut from real text: Tiny Shakespeare, the unique SST-2
sentences and every ``*.py`` file of this Python's standard library (about 30 MB in all). Each
pass over that text cuts it at whitespace into pieces of 300-3,000 characters (new cut points
each pass) and joins 2-4 pieces from random places into one base document, so within a pass no
text repeats and across passes two documents share at most pieces of their text: the largest
character overlap between two base documents, as a Jaccard bound, is printed. Then 1 % of the
base documents get an exact copy and 1 % a near copy with exactly 2 % of its words (``len //
50``) replaced by other words of the corpus; copies are shuffled into other files.

``scale`` prepares it with ``prepare/filters=[clean,length] prepare/dedup=minhash tokenizer=bpe``
(MinHash at its defaults: 5-grams, 14 buckets of 8 hashes, threshold (1/14)^(1/8) = 0.719), once
with 1 worker and once with 2, and prints documents/s and MB/s per worker, the scaling ratio, the
time of each stage, the peak RSS of the process tree (sampled every 0.2 s), and the
near-duplicate recall and precision of the 2-worker run. The ground truth is the injected pairs
whose exact Jaccard similarity of datatrove's MinHash shingles (word 5-grams of the simplified
text) is above the threshold; a pair is found when either document is removed. A removed document
is correctly removed when a kept document of its family (its original or copies) has exact
Jaccard above the threshold with it; any other removal counts against precision.

``reference`` runs, in each of ``--rounds`` rounds, the framework, the plain datatrove script
``benchmarks/prepare_reference.py`` (same steps and settings) and the framework again (the A/A
pair that shows the machine's noise), in an order that rotates each round, and prints the median
wall time of each, the ratio of the reference's to the framework's (>= 0.95: the framework is at
least 95 % as fast) and the A/A ratio, with their ranges over the rounds.

``memory`` prepares corpora of each ``--sizes`` MB with exact dedup instead of MinHash and prints
wall time and peak RSS, to show that memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared" / "data"
THRESHOLD = (1 / 14) ** (1 / 8)
PIECE_CHARS = (300, 3_000)
PIECES_PER_DOCUMENT = (2, 4)
INJECTED_SHARE = 0.01  # of base documents, for each kind of copy
SAMPLE_BYTES = 10_000_000


def real_texts(shared: Path) -> list[str]:
    """Tiny Shakespeare, the unique SST-2 sentences (train and dev) one per line, and the
    standard library's unique ``*.py`` files (outside site-packages), each kind as one text."""
    sentences = dict.fromkeys(
        line.split("\t")[0] for name in ("train.tsv", "dev.tsv") for line in (shared / "sst2" / name).read_text().splitlines()[1:]
    )
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files: dict[bytes, str] = {}
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" not in path.parts:
            raw = path.read_bytes()
            files.setdefault(hashlib.sha256(raw).digest(), raw.decode("utf-8", errors="replace"))
    return [(shared / "tinyshakespeare" / "input.txt").read_text(), "\n".join(sentences), "\n".join(files.values())]


def pieces(text: str, rng: random.Random, stream: int) -> list[tuple[int, int, int]]:
    """``text`` cut at whitespace into consecutive pieces of about :data:`PIECE_CHARS`: ``(stream, start, end)``."""
    result, start = [], rng.randrange(PIECE_CHARS[0])
    while start < len(text) - PIECE_CHARS[0]:
        end = text.find(" ", start + rng.randint(*PIECE_CHARS))
        end = len(text) if end == -1 else end
        result.append((stream, start, end))
        start = end + 1
    return result


def base_documents(texts: list[str], megabytes: float, rng: random.Random):
    """Base documents until ``megabytes``: lists of pieces, 2-4 per document, pass by pass."""
    total, target = 0, megabytes * 1e6
    while total < target:
        cut = [piece for stream, text in enumerate(texts) for piece in pieces(text, rng, stream)]
        rng.shuffle(cut)
        while cut and total < target:
            document = [cut.pop() for _ in range(min(rng.randint(*PIECES_PER_DOCUMENT), len(cut)))]
            total += sum(end - start for _, start, end in document)
            yield document


def overlap_bound(documents: list[list[tuple[int, int, int]]]) -> float:
    """The largest character-overlap Jaccard, ``shared / (a + b - shared)``, between two documents."""
    by_stream = defaultdict(list)
    for index, document in enumerate(documents):
        for stream, start, end in document:
            by_stream[stream].append((start, end, index))
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for intervals in by_stream.values():
        intervals.sort()
        open_intervals: list[tuple[int, int, int]] = []
        for start, end, index in intervals:
            open_intervals = [interval for interval in open_intervals if interval[1] > start]
            for _, other_end, other in open_intervals:
                if other != index:
                    shared[min(index, other), max(index, other)] += min(end, other_end) - start
            open_intervals.append((start, end, index))
    sizes = [sum(end - start for _, start, end in document) for document in documents]
    return max((count / (sizes[a] + sizes[b] - count) for (a, b), count in shared.items()), default=0.0)


def near_copy(text: str, vocabulary: list[str], rng: random.Random) -> str:
    """``text`` with exactly ``words // 50`` of its whitespace-separated words replaced by other words of ``vocabulary``."""
    spans = [match.span() for match in re.finditer(r"\S+", text)]
    replaced = dict.fromkeys(rng.sample(range(len(spans)), len(spans) // 50))
    for position in replaced:
        word = text[slice(*spans[position])]
        while (new := rng.choice(vocabulary)) == word:
            pass
        replaced[position] = new
    out, last = [], 0
    for position in sorted(replaced):
        start, end = spans[position]
        out += [text[last:start], replaced[position]]
        last = end
    return "".join(out) + text[last:]


def build_corpus(folder: Path, megabytes: float, files: int, seed: int, shared: Path, inject: bool = True) -> dict:
    """Write the corpus as ``folder/part-NNN.jsonl``; the record of what was written (sizes, families, overlap bound)."""
    rng = random.Random(seed)
    texts = real_texts(shared)
    documents = list(base_documents(texts, megabytes / (1 + 2 * INJECTED_SHARE if inject else 1), rng))
    bound = overlap_bound(documents) if inject else None
    bodies = ["\n\n".join(texts[stream][start:end] for stream, start, end in document) for document in documents]
    del documents
    entries = [(index, "base") for index in range(len(bodies))]
    if inject:
        vocabulary = texts[0].split() + texts[1].split()
        chosen = rng.sample(range(len(bodies)), 2 * int(INJECTED_SHARE * len(bodies)))
        half = len(chosen) // 2
        entries += [(index, "exact") for index in chosen[:half]] + [(index, "near") for index in chosen[half:]]
        near = {index: near_copy(bodies[index], vocabulary, rng) for index in chosen[half:]}
    rng.shuffle(entries)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-len(entries) // files)
    where: list[tuple[str, int, int, str]] = []  # (file, line, base document, kind) of each record, in order
    for number in range(files):
        name = f"part-{number:03d}.jsonl"
        with (folder / name).open("w", encoding="utf-8") as file:
            for line, (index, kind) in enumerate(entries[number * per_file : (number + 1) * per_file]):
                text = near[index] if kind == "near" else bodies[index]
                file.write(json.dumps({"text": text}) + "\n")
                where.append((name, line + 1, index, kind))  # datatrove ids count lines from 1
    size = sum(path.stat().st_size for path in folder.glob("*.jsonl"))
    record = {"bytes": size, "documents": len(entries), "base": len(bodies), "overlap_bound": bound}
    if inject:
        record["families"] = where
        record["texts"] = {index: (bodies[index], near.get(index)) for index in chosen}
    return record


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants, from ``/proc``."""
    children = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def timed(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run ``command``; its wall time (s), the peak RSS of its process tree (bytes) and its stdout."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return seconds, peak[0], stdout


def framework_command(corpus: Path, work: Path, workers: int, tasks: int, dedup: str = "minhash") -> list[str]:
    return [
        sys.executable,
        "-m",
        "framework.prepare",
        f"input.path={corpus}/*.jsonl",
        "prepare/filters=[clean,length]",
        f"prepare/dedup={dedup}",
        "tokenizer=bpe",
        f"tokenizer.sample_bytes={SAMPLE_BYTES}",
        f"executor.tasks={tasks}",
        f"executor.workers={workers}",
        f"output.dir={work / 'dataset'}",
        f"paths.cache_dir={work / 'cache'}",
    ]


def read_ids(folder: Path) -> set[str]:
    return {json.loads(line)["id"] for path in folder.glob("*.jsonl.gz") for line in gzip.open(path, "rt", encoding="utf-8")}


def dedup_quality(manifest: dict, corpus: dict) -> dict:
    """Recall over the injected pairs above the threshold, and precision of the removed documents."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    shingles_of = MinhashDedupSignature(tempfile.mkdtemp(), MinhashConfig()).get_shingles

    def jaccard(a: str, b: str) -> float:
        a_set, b_set = set(shingles_of(a).ravel().tolist()), set(shingles_of(b).ravel().tolist())
        return len(a_set & b_set) / len(a_set | b_set)

    folders = {stage["stage"]: Path(stage["directory"]) / "output" for stage in manifest["stages"]}
    read, kept = read_ids(folders["filter"]), read_ids(folders["minhash-filter"])
    family = defaultdict(list)  # base index -> [(id, kind)]
    for name, line, index, kind in corpus["families"]:
        family[index].append((f"{name}/{line}", kind))
    texts = corpus["texts"]

    def text(index: int, kind: str) -> str:
        return texts[index][1] if kind == "near" else texts[index][0]

    similarity = {index: jaccard(*texts[index]) if texts[index][1] else 1.0 for index in texts}
    truth = [index for index in texts if similarity[index] > THRESHOLD]
    found = sum(any(member not in kept for member, _ in family[index]) for index in truth)
    removed = read - kept
    correct = 0
    for index, members in family.items():
        for member, kind in members:
            if member in removed and any(
                other in kept and jaccard(text(index, kind), text(index, other_kind)) > THRESHOLD
                for other, other_kind in members
                if other != member and index in texts
            ):
                correct += 1
    near = [value for index, value in similarity.items() if texts[index][1]]
    return {
        "pairs": len(truth),
        "below_threshold": len(texts) - len(truth),
        "near_jaccard": (min(near), statistics.median(near)),
        "recall": found / len(truth),
        "removed": len(removed),
        "precision": correct / len(removed) if removed else 1.0,
    }


def stage_seconds(manifest: dict) -> dict[str, float]:
    return {stage["stage"]: sum(step["seconds"] for step in stage["steps"]) for stage in manifest["stages"]}


def scale(args: argparse.Namespace, scratch: Path) -> None:
    corpus = build_corpus(scratch / "corpus", args.size_mb, args.files, args.seed, args.shared)
    megabytes = corpus["bytes"] / 1e6
    print(
        f"corpus: {megabytes:.1f} MB in {args.files} JSONL files, {corpus['documents']:,} documents "
        f"({corpus['base']:,} base, {int(INJECTED_SHARE * corpus['base']):,} exact and as many near copies); "
        f"largest character-overlap Jaccard between base documents: {corpus['overlap_bound']:.3f}"
    )
    results = {}
    for workers in (1, 2):
        work = scratch / f"workers-{workers}"
        seconds, peak, _ = timed(framework_command(scratch / "corpus", work, workers, args.files), scratch)
        manifest = json.loads((work / "dataset" / "manifest.json").read_text())
        results[workers] = (seconds, manifest)
        print(
            f"{workers} worker(s): {seconds:.1f} s, {corpus['documents'] / seconds / workers:,.0f} documents/s and "
            f"{megabytes / seconds / workers:.2f} MB/s per worker, peak RSS {peak / 2**20:,.0f} MiB; tokens "
            f"{manifest['splits']['train']['tokens']:,} train, {manifest['splits']['val']['tokens']:,} val"
        )
        print("  stage seconds (all tasks): " + ", ".join(f"{name} {value:.1f}" for name, value in stage_seconds(manifest).items()))
    print(f"2 workers / 1 worker, wall-time speed-up: {results[1][0] / results[2][0]:.2f}x")
    same = all(results[1][1]["splits"][split] == results[2][1]["splits"][split] for split in ("train", "val"))
    print(f"same dataset figures with 1 and 2 workers: {same}")
    quality = dedup_quality(results[2][1], corpus)
    print(
        f"MinHash: {quality['pairs']:,} injected pairs above the threshold {THRESHOLD:.3f} ({quality['below_threshold']} below), "
        f"near copies' Jaccard min {quality['near_jaccard'][0]:.3f}, median {quality['near_jaccard'][1]:.3f}; "
        f"recall {quality['recall']:.4f}, {quality['removed']:,} documents removed, precision {quality['precision']:.4f}"
    )


def reference(args: argparse.Namespace, scratch: Path) -> None:
    corpus = build_corpus(scratch / "corpus", args.size_mb, args.files, args.seed, args.shared)
    print(f"corpus: {corpus['bytes'] / 1e6:.1f} MB, {corpus['documents']:,} documents; {args.workers} workers, {args.files} tasks")
    commands = {
        "framework": lambda work: framework_command(scratch / "corpus", work, args.workers, args.files),
        "reference": lambda work: [
            sys.executable,
            str(Path(__file__).with_name("prepare_reference.py")),
            str(scratch / "corpus"),
            str(work),
            f"--tasks={args.files}",
            f"--workers={args.workers}",
            f"--sample-bytes={SAMPLE_BYTES}",
        ],
    }
    seconds: dict[str, list[float]] = defaultdict(list)
    tokens = {}
    for round_index in range(args.rounds):
        order = ["framework", "reference", "framework A/A"]
        order = order[round_index % 3 :] + order[: round_index % 3]
        for name in order:
            work = scratch / f"round-{round_index}-{name.replace(' ', '-').replace('/', '')}"
            elapsed, _, stdout = timed(commands[name.split()[0]](work), scratch)
            seconds[name].append(elapsed)
            if name == "reference":
                tokens["reference"] = json.loads(stdout.strip().splitlines()[-1])["tokens"]
            else:
                splits = json.loads((work / "dataset" / "manifest.json").read_text())["splits"]
                tokens["framework"] = {split: splits[split]["tokens"] for split in splits}
            subprocess.run(["rm", "-rf", str(work)], check=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        print(f"{name}: median {medians[name]:.2f} s ({min(values):.2f}-{max(values):.2f}) over {args.rounds} rounds")
    ratios = [r / f for r, f in zip(seconds["reference"], seconds["framework"])]
    aa = [a / f for a, f in zip(seconds["framework A/A"], seconds["framework"])]
    print(
        f"framework speed / reference speed: {medians['reference'] / medians['framework']:.3f} of the medians, rounds "
        f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}); A/A: {medians['framework A/A'] / medians['framework']:.3f}, "
        f"rounds {statistics.median(aa):.3f} ({min(aa):.3f}-{max(aa):.3f})"
    )
    print(f"tokens, framework {tokens['framework']}, reference {tokens['reference']}: same {tokens['framework'] == tokens['reference']}")


def memory(args: argparse.Namespace, scratch: Path) -> None:
    for size in args.sizes:
        folder = scratch / f"corpus-{size}"
        corpus = build_corpus(folder, size, args.files, args.seed, args.shared, inject=False)
        work = scratch / f"memory-{size}"
        seconds, peak, _ = timed(framework_command(folder, work, args.workers, args.files, dedup="exact"), scratch)
        manifest = json.loads((work / "dataset" / "manifest.json").read_text())
        print(
            f"{corpus['bytes'] / 1e6:,.0f} MB ({corpus['documents']:,} documents), exact dedup, {args.workers} workers: {seconds:.1f} s, "
            f"{corpus['bytes'] / 1e6 / seconds:.2f} MB/s, peak RSS {peak / 2**20:,.0f} MiB, {manifest['splits']['train']['tokens']:,} train tokens"
        )
        subprocess.run(["rm", "-rf", str(folder), str(work)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("scale", "reference", "memory"))
    parser.add_argument("--size-mb", type=float, default=None, help="corpus size (scale: 200, reference: 20)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[200, 1000], help="memory: corpus sizes in MB")
    parser.add_argument("--files", type=int, default=16, help="JSONL files, and executor.tasks")
    parser.add_argument("--workers", type=int, default=2, help="reference and memory: executor.workers")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--scratch", type=Path, default=None, help="where the corpus and outputs go (default: a temporary directory)")
    args = parser.parse_args()
    args.size_mb = args.size_mb or (200 if args.mode == "scale" else 20)
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        {"scale": scale, "reference": reference, "memory": memory}[args.mode](args, Path(scratch))


if __name__ == "__main__":
    main()
