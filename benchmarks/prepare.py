"""Corpus preparation at scale (``python -m framework.prepare``) on a corpus built from real text.

    python benchmarks/prepare.py scale [--size-mb 200]        # 1 vs 2 workers, peak RSS, MinHash recall and precision
    python benchmarks/prepare.py reference [--size-mb 20] [--rounds 7]   # the framework vs benchmarks/prepare_reference.py
    python benchmarks/prepare.py memory [--sizes 200 1000]    # peak RSS by corpus size, without MinHash

The corpus (JSONL, ``--files`` files) is cut from real text: Tiny Shakespeare, the unique SST-2
sentences and every ``*.py`` file of this Python's standard library (about 36 MB in all, printed). Each
pass over that text cuts it at spaces into passages of ``--piece-chars`` (300-700)
characters, new cut points each pass, and joins ``--pieces`` (6-10) passages from random places
into one base document, so within a pass no text repeats and across passes two documents share
at most a few passages, a small part of each: the largest positional overlap between two base
documents (characters of the same place in the source text, as a Jaccard similarity) is
printed; the same text at two places of the source is not counted. Then 1 % of the
base documents get an exact copy and 1 % a near copy with ``words // 50`` (2 %) of its
space-separated words replaced by other words of the corpus; all documents are shuffled
among the files.

``scale`` prepares it with ``prepare/filters=[clean,length] prepare/dedup=minhash tokenizer=bpe``
(MinHash at its defaults: 5-grams, 14 buckets of 8 hashes, threshold (1/14)^(1/8) = 0.719), once
with 1 worker and once with 2, and prints documents/s and MB/s per worker, the scaling ratio, the
time of each stage, the peak RSS of the process tree (sampled every 0.2 s), and the
near-duplicate recall and precision of the 2-worker run. Peak RSS is the sum of the RSS of
the command's processes (pages a forked worker shares with its parent count in both). Each worker is one thread
(``TOKENIZERS_PARALLELISM=false``: HF tokenizers would otherwise spread one worker's encoding
over every core). Precision: of the distinct pairs MinHash's bucket stage reported (datatrove's
``.dups`` files), the fraction whose exact Jaccard similarity of datatrove's MinHash shingles
(word 5-grams of the simplified text) is above the threshold. Recall: of the injected pairs
above the threshold, the fraction whose two documents fall in one cluster of reported pairs
(the documents MinHash then keeps one of).

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
import struct
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
INJECTED_SHARE = 0.01  # of base documents, for each kind of copy
SAMPLE_BYTES = 10_000_000
ONE_THREAD = {"TOKENIZERS_PARALLELISM": "false"}


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


def pieces(text: str, rng: random.Random, stream: int, chars: tuple[int, int]) -> list[tuple[int, int, int]]:
    """``text`` cut at spaces into consecutive pieces of about ``chars`` characters: ``(stream, start, end)``."""
    result, start = [], rng.randrange(chars[0])
    while start < len(text) - chars[0]:
        end = text.find(" ", start + rng.randint(*chars))
        end = len(text) if end == -1 else end
        result.append((stream, start, end))
        start = end + 1
    return result


def base_documents(texts: list[str], megabytes: float, rng: random.Random, cut: argparse.Namespace):
    """Base documents until ``megabytes``: lists of ``cut.pieces`` pieces of ``cut.piece_chars`` characters, pass by pass."""
    total, target = 0, megabytes * 1e6
    while total < target:
        pool = [piece for stream, text in enumerate(texts) for piece in pieces(text, rng, stream, cut.piece_chars)]
        rng.shuffle(pool)
        while len(pool) >= cut.pieces[1] and total < target:
            document = [pool.pop() for _ in range(rng.randint(*cut.pieces))]
            total += sum(end - start for _, start, end in document)
            yield document


def overlap_bound(documents: list[list[tuple[int, int, int]]]) -> float:
    """The largest positional overlap between two documents: characters taken from the same
    place of the same source text, as ``shared / (a + b - shared)``."""
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


def build_corpus(folder: Path, megabytes: float, args: argparse.Namespace, inject: bool = True) -> dict:
    """Write the corpus as ``folder/part-NNN.jsonl`` (``args``: files, seed, shared, piece_chars,
    pieces); the record of what was written (sizes, families, overlap bound)."""
    rng = random.Random(args.seed)
    texts = real_texts(args.shared)
    documents = list(base_documents(texts, megabytes / (1 + 2 * INJECTED_SHARE if inject else 1), rng, args))
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
    files = args.files
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
    record["source_mb"] = sum(len(text.encode()) for text in texts) / 1e6
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


def timed(command: list[str], cwd: Path, environment: dict | None = None) -> tuple[float, int, str]:
    """Run ``command`` (with ``environment`` added); its wall time (s), the peak RSS of its process tree (bytes) and its stdout."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(environment or {})}
    )
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


def filtered_documents(folder: Path, tasks: int) -> tuple[list[list[str]], dict[str, tuple[int, int]]]:
    """The filter stage's documents as the MinHash signature stage numbers them (task ``r``
    reads files ``r::tasks`` of the sorted output, documents counted from 0): texts by
    ``[task][index]``, and each input id's ``(task, index)``."""
    files = sorted(folder.glob("*.jsonl.gz"))
    texts: list[list[str]] = [[] for _ in range(tasks)]
    where = {}
    for task in range(tasks):
        for path in files[task::tasks]:
            for line in gzip.open(path, "rt", encoding="utf-8"):
                record = json.loads(line)
                where[record["id"]] = (task, len(texts[task]))
                texts[task].append(record["text"])
    return texts, where


def reported_pairs(folder: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The distinct pairs MinHash's bucket stage reported (several buckets may report one pair):
    datatrove's ``*.dups`` files of ``(task, index, task, index)`` as little-endian uint32 (a
    sentinel task marks a match with an index of an earlier dataset, which this has none of)."""
    sentinel = (1 << 32) - 1
    pairs = set()
    for path in sorted(folder.glob("*.dups")):
        for first_task, first, second_task, second in struct.iter_unpack("<4I", path.read_bytes()):
            if first_task != sentinel:
                pairs.add(tuple(sorted([(first_task, first), (second_task, second)])))
    return sorted(pairs)


def dedup_quality(manifest: dict, corpus: dict, tasks: int) -> dict:
    """Precision of the pairs MinHash reported (exact Jaccard above the threshold) and recall
    of the injected pairs above the threshold (both documents in one cluster of reported pairs)."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    shingles_of = MinhashDedupSignature(tempfile.mkdtemp(), MinhashConfig()).get_shingles

    def jaccard(a: str, b: str) -> float:
        a_set, b_set = set(shingles_of(a).ravel().tolist()), set(shingles_of(b).ravel().tolist())
        return len(a_set & b_set) / len(a_set | b_set)

    folders = {stage["stage"]: Path(stage["directory"]) / "output" for stage in manifest["stages"]}
    texts, where = filtered_documents(folders["filter"], tasks)
    pairs = reported_pairs(folders["minhash-buckets"])
    true_pairs = [pair for pair in pairs if jaccard(texts[pair[0][0]][pair[0][1]], texts[pair[1][0]][pair[1][1]]) > THRESHOLD]
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(node):
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    for a, b in pairs:
        parent[root(a)] = root(b)
    families: dict[int, dict[str, str]] = defaultdict(dict)  # base document -> {"base" | "exact" | "near": input id}
    for name, line, index, kind in corpus["families"]:
        families[index][kind] = f"{name}/{line}"
    truth, found, near, injected_pairs = 0, 0, [], set()
    for index, (original, near_copy) in corpus["texts"].items():
        kind = "near" if near_copy else "exact"
        pair = (where[families[index]["base"]], where[families[index][kind]])
        injected_pairs.add(frozenset(pair))
        similarity = jaccard(original, near_copy) if near_copy else 1.0
        if near_copy:
            near.append(similarity)
        if similarity > THRESHOLD:
            truth += 1
            found += root(pair[0]) == root(pair[1])
    return {
        "pairs": truth,
        "below_threshold": len(injected_pairs) - truth,
        "near_jaccard": (min(near), statistics.median(near)),
        "recall": found / truth,
        "reported": len(pairs),
        "precision": len(true_pairs) / len(pairs) if pairs else 1.0,
        "other_true": sum(frozenset(pair) not in injected_pairs for pair in true_pairs),
    }


def stage_seconds(manifest: dict) -> dict[str, float]:
    return {stage["stage"]: sum(step["seconds"] for step in stage["steps"]) for stage in manifest["stages"]}


def scale(args: argparse.Namespace, scratch: Path) -> None:
    corpus = build_corpus(scratch / "corpus", args.size_mb, args)
    megabytes = corpus["bytes"] / 1e6
    print(
        f"corpus: {megabytes:.1f} MB in {args.files} JSONL files, {corpus['documents']:,} documents "
        f"({corpus['base']:,} base, {int(INJECTED_SHARE * corpus['base']):,} exact and as many near copies); "
        f"largest positional overlap between base documents: {corpus['overlap_bound']:.3f}; source text {corpus['source_mb']:.1f} MB"
    )
    results = {}
    for workers in (1, 2):
        work = scratch / f"workers-{workers}"
        seconds, peak, _ = timed(framework_command(scratch / "corpus", work, workers, args.files), scratch, ONE_THREAD)
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
    quality = dedup_quality(results[2][1], corpus, args.files)
    print(
        f"MinHash: {quality['pairs']:,} injected pairs above the threshold {THRESHOLD:.3f} ({quality['below_threshold']} below), "
        f"near copies' Jaccard min {quality['near_jaccard'][0]:.3f}, median {quality['near_jaccard'][1]:.3f}; recall {quality['recall']:.4f}; "
        f"{quality['reported']:,} pairs reported, precision {quality['precision']:.4f} ({quality['other_true']} true pairs besides the injected ones)"
    )


def reference(args: argparse.Namespace, scratch: Path) -> None:
    corpus = build_corpus(scratch / "corpus", args.size_mb, args)
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
        corpus = build_corpus(folder, size, args, inject=False)
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
    parser.add_argument("--piece-chars", type=int, nargs=2, default=(300, 700), metavar=("MIN", "MAX"), help="characters per passage")
    parser.add_argument("--pieces", type=int, nargs=2, default=(6, 10), metavar=("MIN", "MAX"), help="passages per base document")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--scratch", type=Path, default=None, help="where the corpus and outputs go (default: a temporary directory)")
    args = parser.parse_args()
    args.size_mb = args.size_mb or (200 if args.mode == "scale" else 20)
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        {"scale": scale, "reference": reference, "memory": memory}[args.mode](args, Path(scratch))


if __name__ == "__main__":
    main()
