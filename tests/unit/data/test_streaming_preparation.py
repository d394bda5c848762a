"""Corpus preparation in bounded memory: documents read in blocks, cleaned and cut as a stream,
and the result identical to preparing the whole text held in memory."""

import os
import random
import re
import tracemalloc
from pathlib import Path

import pytest

from framework.data import Document, TextFileDocument, TextFilesSource, prepare_corpus
from framework.data.cleaning import clean, clean_blocks
from framework.data.sources import read_text_file
from framework.data.token_cache import read_span, write_text
from framework.tokenizer import safe_chunks, train_bpe_tokenizer, train_char_tokenizer, train_word_tokenizer

CLEANING = ["newlines", "nfc", "strip_control"]
# CRLF pairs, combining accents at line starts and ends, control characters, CJK and an emoji,
# lines ending in spaces and blank lines: what a block or piece boundary could break.
AWKWARD = "".join(
    f"caf\u0065\u0301 {i}\r\n\u0301accent first {i}\rbell\x07{i}\t\n\u65e5\u672c {i} \U0001f600 \n\n  indented {i}\n" for i in range(400)
)
OLD_MAC = "".join(f"line {i} caf\u0065\u0301\r\u0301\x0c next\r" for i in range(300))  # CR line ends only
INDENTED = "".join(f"    indented line {i}\n\tand a tab {i}\n" for i in range(2000))  # no safe cut point at all


def random_blocks(text: str, seed: int, longest: int = 40) -> list[str]:
    """``text`` cut at random places into blocks of 1 to ``longest`` characters."""
    rng, blocks, start = random.Random(seed), [], 0
    while start < len(text):
        end = start + rng.randint(1, longest)
        blocks.append(text[start:end])
        start = end
    return blocks


@pytest.mark.parametrize("seed", range(5))
def test_cleaning_a_stream_of_blocks_equals_cleaning_the_whole_text(seed):
    blocks = random_blocks(AWKWARD, seed)
    assert "".join(blocks) == AWKWARD and any(block.endswith("\r") for block in blocks)
    assert "".join(clean_blocks(blocks, CLEANING)) == clean(AWKWARD, CLEANING)
    assert clean(AWKWARD, CLEANING).count("\u00e9") == 400  # e + U+0301 composed across no cut
    for steps in (CLEANING, ["nfkc", "strip_control", "newlines"], ["strip_control", "newlines"], []):
        pieces = list(clean_blocks(random_blocks(OLD_MAC, seed), steps))
        assert "".join(pieces) == clean(OLD_MAC, steps)
        assert len(pieces) > 200 and max(map(len, pieces)) < 80  # cut at lone CRs too: held a block and a line at most
    # A CR, a control character, then a LF (here across blocks, and across documents) is one
    # line end once strip_control has run: no cut may fall after that CR.
    for blocks in (["\r", "\x1c", "\n"], ["old mac\r\x1a", "\n", "next"], ["a\r\x0b\x0c", "\n\rb\r", "\x1c\n"]):
        for steps in (["strip_control", "newlines"], ["nfkc", "strip_control", "newlines"]):
            assert "".join(clean_blocks(blocks, steps)) == clean("".join(blocks), steps)


@pytest.mark.parametrize("seed", range(5))
def test_safe_chunks_of_a_stream_of_blocks_equal_those_of_the_whole_text(seed, shakespeare_path):
    text = shakespeare_path.read_text()[:30_000] + AWKWARD
    whole = list(safe_chunks(text, chunk_chars=300))
    assert len(whole) > 100
    assert list(safe_chunks(random_blocks(text, seed, longest=700), chunk_chars=300)) == whole
    stretch = text[:5000] + INDENTED + text[5000:]
    assert list(safe_chunks(random_blocks(stretch, seed, longest=700), chunk_chars=300)) == list(safe_chunks(stretch, chunk_chars=300))


def test_read_span_returns_the_characters_between_two_positions(tmp_path):
    path = tmp_path / "text.txt"
    text = AWKWARD + "\U0001f600 end"
    assert write_text(random_blocks(text, 0), path) == len(text)
    for start, stop in ((0, len(text)), (0, 1), (5, 5000), (4999, len(text)), (len(text), len(text))):
        assert "".join(read_span(path, start, stop, block_chars=97)) == text[start:stop]


def test_invalid_utf8_is_located_across_block_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr("framework.data.sources.BLOCK_BYTES", 4)
    path = tmp_path / "bad.txt"
    for good, bad_offset in ((b"abc", 3), ("ab\u00e9\u65e5".encode(), 7), ("\u65e5\u65e5".encode(), 6)):
        path.write_bytes(good + b"\xe9x" if bad_offset != 6 else good + b"\xe6\x97")  # the last: cut short at the end
        with pytest.raises(ValueError, match=rf"bad.txt is not valid UTF-8: byte 0x.. at byte offset {bad_offset}\."):
            "".join(TextFileDocument(path).blocks())


def whole_text_reference(texts, tokenizer_of, val_fraction=0.1):
    """The preparation done on the whole text in memory: join, clean, split by characters,
    train on the train split, encode each split whole."""
    text = clean("\n".join(texts), CLEANING)
    boundary = int(len(text) * (1 - val_fraction))
    tokenizer = tokenizer_of(text[:boundary])
    return tokenizer, {"train": tokenizer.encode(text[:boundary]).ids, "val": tokenizer.encode(text[boundary:]).ids}


@pytest.mark.parametrize(
    "tokenizer_of",
    [train_char_tokenizer, lambda text: train_bpe_tokenizer(text, vocab_size=400), lambda text: train_word_tokenizer(text, num_words=50)],
    ids=["char", "bpe", "word"],
)
def test_streamed_preparation_equals_whole_text_preparation(tokenizer_of, shakespeare_path, tmp_path, monkeypatch):
    texts = [shakespeare_path.read_text()[:40_000], AWKWARD, "tail without a newline \u0301"]
    for index, text in enumerate(texts):
        (tmp_path / f"{index}.txt").write_text(text, encoding="utf-8", newline="")
    monkeypatch.setattr("framework.data.sources.BLOCK_BYTES", 777)  # many blocks per file, cut mid-character
    monkeypatch.setattr("framework.data.token_cache.read_span.__defaults__", (555,))
    monkeypatch.setattr("framework.tokenizer.encoding.safe_chunks.__defaults__", (300,))
    corpus = prepare_corpus(TextFilesSource(str(tmp_path / "*.txt")).read(), CLEANING, 0.1, tokenizer_of, {"t": 1}, tmp_path / "cache")

    tokenizer, ids = whole_text_reference(texts, tokenizer_of)
    assert corpus.tokenizer.to_str() == tokenizer.to_str()
    for split in ("train", "val"):
        assert corpus.tokens(split).tolist() == ids[split] and len(ids[split]) > 1000
    cleaned = clean("\n".join(texts), CLEANING)
    assert sum(corpus.meta["characters"].values()) == len(cleaned) and corpus.meta["num_documents"] == 3
    assert sorted(path.name for path in corpus.directory.iterdir()) == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]


def test_documents_are_read_twice_so_an_iterator_is_refused(tmp_path):
    with pytest.raises(TypeError, match="reads the documents twice"):
        prepare_corpus(iter([Document("a", "text " * 100)]), [], 0.1, train_char_tokenizer, {}, tmp_path)


def test_invalid_utf8_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "a.txt").write_text("fine text\n" * 100)
    (tmp_path / "b.txt").write_bytes(b"fine\n" * 100 + b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"b.txt is not valid UTF-8: byte 0xe9 at byte offset 503"):
        prepare_corpus(TextFilesSource(str(tmp_path / "*.txt")).read(), [], 0.1, train_char_tokenizer, {}, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_preparation_memory_does_not_grow_with_the_corpus(shakespeare_path, tmp_path):
    """Python's peak allocations while preparing a 24 MB file stay under 8 MiB (6.2 measured): a
    1 MiB block and its cleaned copies, the piece being cut and the chunks in flight, not the
    corpus (held whole, it alone would be 24 MB, and its cleaned and split copies as much again). The tokenizer is built beforehand so that only reading,
    cleaning, splitting and encoding (through tiktoken, whose arrays tracemalloc sees) count."""
    shakespeare = shakespeare_path.read_text()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare * 22)
    tokenizer = train_bpe_tokenizer(shakespeare[:100_000], vocab_size=300)

    def consume_train_split(train_blocks):
        assert sum(map(len, train_blocks)) == int(len(shakespeare) * 22 * 0.9)
        return tokenizer

    tracemalloc.start()
    try:
        prepared = prepare_corpus(TextFilesSource(str(corpus)).read(), CLEANING, 0.1, consume_train_split, {}, tmp_path / "cache")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert corpus.stat().st_size == 24_538_668
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert prepared.tokens("train")[:1000].tolist() == tokenizer.encode(shakespeare[:10_000]).ids[:1000]


class ChangingDocument:
    """A document whose text differs at each read, as a file rewritten during preparation."""

    name = "changing.txt"

    def __init__(self) -> None:
        self.reads = 0

    def blocks(self):
        self.reads += 1
        yield ("first version\n" if self.reads == 1 else "second version\n") * 100


class OnePass:
    """An iterable (not an iterator) over documents that can be read only once, like a pipe."""

    def __init__(self, documents) -> None:
        self.remaining = iter(documents)

    def __iter__(self):
        return self.remaining


@pytest.mark.parametrize(
    "documents, second",
    [
        (lambda: [ChangingDocument()], "1 document(s), 1,500 bytes"),
        (lambda: OnePass([Document("a", "text\n" * 100)]), "0 document(s), 0 bytes"),
    ],
    ids=["rewritten", "one-pass"],
)
def test_a_corpus_that_changes_between_its_two_reads_is_refused_and_not_cached(documents, second, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(
        ValueError, match=rf"The corpus changed while it was being prepared: read first as 1 document\(s\), .* then as {re.escape(second)}"
    ):
        prepare_corpus(documents(), [], 0.1, train_char_tokenizer, {}, cache)
    assert list(cache.iterdir()) == []  # no entry, no staging left behind


def test_a_lone_surrogate_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "records.jsonl").write_text('{"text": "fine"}\n{"text": "caf\u00e9 \\ud800 end"}\n')
    with pytest.raises(ValueError, match=r"records.jsonl:2 holds a lone surrogate U\+D800 at byte 6 of its text .*unpaired \\ud800 escape"):
        prepare_corpus(TextFilesSource(str(tmp_path / "records.jsonl")).read(), [], 0.1, train_char_tokenizer, {}, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_pipe_is_read_whole_by_read_text_file_but_refused_as_a_corpus(tmp_path):
    for payload in (b"hello\n", b""):
        reader, writer = os.pipe()
        os.write(writer, payload)
        os.close(writer)
        try:
            path = Path(f"/proc/self/fd/{reader}")
            if payload:
                assert read_text_file(path, kind="Input file") == "hello\n"
            else:
                with pytest.raises(ValueError, match=rf"Input file {path} is empty"):
                    read_text_file(path, kind="Input file")
        finally:
            os.close(reader)
    os.mkfifo(tmp_path / "fifo.txt")
    with pytest.raises(ValueError, match=r"fifo.txt is not a regular file \(a pipe or device\?\). The corpus is read twice"):
        TextFilesSource(str(tmp_path / "fifo.txt")).read()  # refused without opening it, which would wait for a writer
    os.mkfifo(tmp_path / "stdin")
    with pytest.raises(ValueError, match=r"stdin is not a regular file"):  # not "has extension ''"
        TextFilesSource(str(tmp_path / "stdin")).read()


def test_word_tokenizer_refuses_text_without_words_whatever_its_special_tokens():
    with pytest.raises(ValueError, match="without words"):
        train_word_tokenizer(" ,;! \n ...", oov_token="<pad>")
    assert "unk" in train_word_tokenizer("unk words here", oov_token="<oov>").get_vocab()
