import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import pre_tokenizers

from framework.data import (
    Document,
    LanguageModelingDataModule,
    StdlibSource,
    TextFilesSource,
    TinyShakespeareSource,
    prepare_corpus,
)
from framework.data.cleaning import clean
from framework.data.datamodule import (
    RELEASE_EVERY,
    RandomWindows,
    SequentialWindows,
    check_split_length,
    scale_below,
    splitmix64,
    uniform_below,
)
from framework.errors import ConfigError, UserInputError
from framework.tokenizer import (
    bytes_per_token,
    characters_per_token,
    encode_to_file,
    safe_chunks,
    token_dtype,
    train_bpe_tokenizer,
    train_char_tokenizer,
    train_word_tokenizer,
)
from framework.tokenizer.tiktoken_bridge import tiktoken_encoding

SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def text_of(document):
    """All of a document's text."""
    return "".join(document.blocks())


def prepare(documents, cache_dir, tokenizer=train_char_tokenizer, config=None, cleaning=("newlines",)):
    return prepare_corpus(documents, list(cleaning), 0.1, tokenizer, config or {"kind": "char"}, cache_dir)


def test_tinyshakespeare_char_figures_match_nanogpt(shakespeare_path, tmp_path, caplog):
    source = TinyShakespeareSource(url="unused", sha256=SHAKESPEARE_SHA256, cache_dir=str(tmp_path), path=str(shakespeare_path))
    documents = source.read()
    caplog.set_level(logging.INFO)
    corpus = prepare(documents, tmp_path / "cache")
    assert not corpus.cache_hit
    chars = [token for token, _ in sorted(corpus.tokenizer.get_vocab().items(), key=lambda item: item[1])]
    assert len(chars) == 66 and chars[-1] == "<unk>"  # nanoGPT's 65 characters, then <unk>
    assert "".join(chars[:65]) == "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert corpus.meta["tokens"] == {"train": 1_003_854, "val": 111_540}
    assert corpus.meta["characters"] == {"train": 1_003_854, "val": 111_540}
    assert corpus.meta["dtype"] == "uint16" and corpus.meta["source_sha256"]
    train = corpus.tokens("train")
    assert corpus.tokenizer.decode(train[:14].tolist()) == "First Citizen:"

    again = prepare(documents, tmp_path / "cache")
    assert again.cache_hit and again.directory == corpus.directory
    assert "Token cache hit" in caplog.text
    assert np.array_equal(again.tokens("val"), corpus.tokens("val"))
    assert json.loads((corpus.directory / "meta.json").read_text())["tokenizer_sha256"] == corpus.meta["tokenizer_sha256"]


def test_cache_key_changes_with_tokenizer_config_and_text(tmp_path):
    documents = [Document("a", "hello world, hello tokens. " * 20)]
    first = prepare(documents, tmp_path)
    other_config = prepare(documents, tmp_path, config={"kind": "char", "unk_token": "<?>"})
    other_text = prepare([Document("a", "goodbye world, goodbye. " * 20)], tmp_path)
    assert len({first.directory, other_config.directory, other_text.directory}) == 3


def test_a_finished_runs_tokenizer_reads_the_entry_its_training_made(shakespeare_path, tmp_path, caplog):
    from tokenizers import Tokenizer

    from framework.tokenizer import tokenizer_hash

    documents = [Document("verse", shakespeare_path.read_text()[:60_000])]
    config = {"kind": "bpe", "vocab_size": 300}
    trained = prepare(documents, tmp_path / "cache", tokenizer=lambda text: train_bpe_tokenizer(text, vocab_size=300), config=config)
    trained.tokenizer.save(str(tmp_path / "run_tokenizer.json"))  # as a run saves it, and evaluate reads it
    run_tokenizer = Tokenizer.from_file(str(tmp_path / "run_tokenizer.json"))
    given = {"trained_tokenizer": tokenizer_hash(run_tokenizer)}
    caplog.set_level(logging.INFO)

    def with_run_tokenizer(trained_from):
        return prepare_corpus(
            documents, ["newlines"], 0.1, lambda _text: run_tokenizer, given, tmp_path / "cache", trained_from=trained_from
        )

    reused = with_run_tokenizer((config, tokenizer_hash(run_tokenizer)))
    assert reused.cache_hit and reused.directory == trained.directory and "Token cache miss" not in caplog.text
    other = with_run_tokenizer((config, "0" * 64))  # another tokenizer trained from the same config
    assert not other.cache_hit and other.directory != trained.directory
    assert np.array_equal(other.tokens("val"), trained.tokens("val"))


def test_unseen_characters_encode_to_unk_not_dropped():
    tokenizer = train_char_tokenizer("abcabc ")
    ids = tokenizer.encode("a€b\u00e9").ids
    unk = tokenizer.token_to_id("<unk>")
    assert ids == [tokenizer.token_to_id("a"), unk, tokenizer.token_to_id("b"), unk]


def test_corpus_shorter_than_one_window_is_refused():
    with pytest.raises(UserInputError, match=r"The train split has 9 tokens, fewer than block_size \+ 1 = 65"):
        RandomWindows(np.arange(9, dtype=np.uint16), block_size=64, num_samples=10, seed=0)
    with pytest.raises(ValueError, match=r"The val split has 1 tokens"):
        check_split_length("val", 1, 64)


def test_random_windows_are_seeded_and_targets_are_shifted_inputs():
    tokens = np.arange(1000, dtype=np.uint16)
    windows = RandomWindows(tokens, block_size=16, num_samples=50, seed=7)
    x, y = windows[3]
    assert x.dtype == torch.int64 and x.shape == (16,)
    assert torch.equal(y[:-1], x[1:]) and y[-1] == x[-1] + 1
    again = RandomWindows(tokens, block_size=16, num_samples=50, seed=7)
    assert all(torch.equal(windows[i][0], again[i][0]) for i in range(50))
    other_seed = RandomWindows(tokens, block_size=16, num_samples=50, seed=8)
    assert any(not torch.equal(windows[i][0], other_seed[i][0]) for i in range(50))
    starts = {int(windows[i][0][0]) for i in range(50)}
    assert len(starts) > 40 and max(starts) <= 1000 - 17


def test_splitmix64_matches_the_reference_outputs():
    # The reference generator (Vigna's splitmix64.c) seeded with 0 returns these first three
    # outputs; its n-th output is this function of (n - 1) x the golden gamma.
    golden = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        states = np.arange(3, dtype=np.uint64) * golden
    assert [int(value) for value in splitmix64(states)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_random_offsets_depend_only_on_seed_and_counter_and_are_uniform():
    counters = np.arange(100_000)
    offsets = uniform_below(7, counters, 10)
    assert offsets.dtype == np.int64 and offsets.min() == 0 and offsets.max() == 9
    assert np.abs(np.bincount(offsets) - 10_000).max() < 400  # 4 standard deviations of a fair draw
    assert np.array_equal(uniform_below(7, counters[[5, 99_999, 3]], 10), offsets[[5, 99_999, 3]])
    assert not np.array_equal(uniform_below(8, counters[:100], 10), offsets[:100])
    extremes = np.array([0, 2**64 - 1], dtype=np.uint64)  # the smallest and largest draws
    for bound in (3, 10, 999_983, 2**40 - 1, 2**52 + 1):
        assert scale_below(extremes, bound).tolist() == [0, bound - 1]


def test_a_batch_of_windows_is_read_at_once_and_equals_the_single_reads():
    tokens = np.arange(1000, dtype=np.uint16)  # each token is its own position
    random_starts = uniform_below(7, np.array([4, 0, 9]), 1000 - 16)
    for windows, starts in (
        (RandomWindows(tokens, block_size=16, num_samples=50, seed=7), random_starts),
        (SequentialWindows(tokens, block_size=16), [64, 0, 144]),
    ):
        x, y = windows.__getitems__([4, 0, 9])
        assert x.shape == y.shape == (3, 16) and x.dtype == torch.int64
        for row, (index, start) in enumerate(zip([4, 0, 9], starts)):
            assert torch.equal(x[row], torch.arange(start, start + 16)) and torch.equal(y[row], x[row] + 1)
            assert torch.equal(windows[index][0], x[row])
    resumed = RandomWindows(tokens, block_size=16, num_samples=50, seed=7)
    resumed.first_sample = 20
    fresh = RandomWindows(tokens, block_size=16, num_samples=50, seed=7)
    assert torch.equal(resumed.__getitems__([0, 1])[0], fresh.__getitems__([20, 21])[0])


def test_sequential_windows_cover_each_target_once():
    windows = SequentialWindows(np.arange(101, dtype=np.uint16), block_size=10)
    assert len(windows) == 10
    targets = torch.cat([windows[i][1] for i in range(len(windows))])
    assert torch.equal(targets, torch.arange(1, 101))


def mapped_file_megabytes() -> float:
    """Mapped file pages of this process (RssShmem where the file lives on tmpfs), in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return sum(int(fields[name].split()[0]) for name in ("RssFile", "RssShmem")) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssFile from Linux's /proc")
def test_windows_release_the_memmap_pages_they_touched(tmp_path):
    path = tmp_path / "train.bin"
    np.arange(64 << 20, dtype=np.uint16).tofile(path)  # 128 MB
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    before = mapped_file_megabytes()
    assert int(tokens[::2048].sum(dtype=np.int64)) > 0  # touches every page
    assert mapped_file_megabytes() - before > 100
    windows = RandomWindows(tokens, block_size=64, num_samples=RELEASE_EVERY, seed=0)
    for index in range(RELEASE_EVERY - 1):
        windows[index]
    assert mapped_file_megabytes() - before > 100
    x, y = windows[0]  # the process's RELEASE_EVERY-th read releases the pages first, whatever its index
    assert mapped_file_megabytes() - before < 10
    assert torch.equal(x[1:], y[:-1]) and torch.equal((y - x) % 65536, torch.ones(64, dtype=torch.int64))


def test_datamodule_batches(tmp_path):
    module = LanguageModelingDataModule(
        np.arange(500, dtype=np.uint16), np.arange(200, dtype=np.uint16), block_size=8, batch_size=4, num_train_samples=12, seed=0
    )
    train_batches = list(module.train_dataloader())
    assert len(train_batches) == 3 and train_batches[0][0].shape == (4, 8)
    assert len(list(module.val_dataloader())) == 6  # 199 targets hold 24 windows of 8: 6 batches of 4


def test_cleaning_steps_in_order():
    text = "Cafe\u0301\r\nline\rbell\x07tab\t"
    assert clean(text, ["newlines", "nfc", "strip_control"]) == "Caf\u00e9\nline\nbelltab\t"
    with pytest.raises(ValueError, match=r"Unknown data.cleaning step\(s\) \['lowercase'\]"):
        clean(text, ["lowercase"])


def encoded(tokenizer, text, tmp_path, monkeypatch):
    """``text``'s ids through :func:`encode_to_file` in chunks of about 1,000 characters, read back."""
    monkeypatch.setattr("framework.tokenizer.encoding.safe_chunks.__defaults__", (1000,))
    path = tmp_path / "ids.bin"
    written = encode_to_file(tokenizer, text, path)
    ids = np.fromfile(path, dtype=token_dtype(tokenizer.get_vocab_size()))
    assert written == ids.size
    return ids


def test_chunked_bpe_encoding_equals_whole_text_encoding(shakespeare_path, tmp_path, monkeypatch):
    text = shakespeare_path.read_text()[:200_000]
    tokenizer = train_bpe_tokenizer(text, vocab_size=512)
    chunks = list(safe_chunks(text, chunk_chars=1000))
    assert len(chunks) > 100 and "".join(chunks) == text
    whole = tokenizer.encode(text).ids
    assert encoded(tokenizer, text, tmp_path, monkeypatch).tolist() == whole
    assert tokenizer.decode(whole) == text


def test_tiktoken_gives_the_ids_of_our_byte_level_bpe(shakespeare_path):
    stdlib = "\n".join(text_of(document) for document in StdlibSource().read())
    tokenizer = train_bpe_tokenizer(stdlib[:2_000_000], vocab_size=8192)
    encoding = tiktoken_encoding(tokenizer)
    assert encoding is not None and encoding.n_vocab == 8192
    edge_cases = "caf\u00e9  na\u00efve\t\t\n\n x<|endoftext|>y \u65e5\u672c 's 'S 'll\r\n \u00a0\u2028 \U0001f600 end "
    for text in (stdlib[-1_500_000:], shakespeare_path.read_text(), edge_cases):  # text the tokenizer was not trained on too
        hf_ids = tokenizer.encode(text).ids
        assert encoding.encode(text, allowed_special="all") == hf_ids
        assert len(hf_ids) > len(text) / 8  # a real encoding, not an empty one
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [0] == tokenizer.encode("<|endoftext|>").ids


def test_special_tokens_that_a_chunk_cut_could_split_are_refused():
    text = "hello world\nUser: hi\n" * 50
    with pytest.raises(ConfigError, match=r"tokenizer.special_tokens \['world\\nUser:'\] hold a newline after their first character"):
        train_bpe_tokenizer(text, vocab_size=300, special_tokens=("<|endoftext|>", "world\nUser:"))
    leading = train_bpe_tokenizer(text, vocab_size=300, special_tokens=("<|endoftext|>", "\nUser:"))
    assert leading.encode("\nUser:").ids == [1]  # a newline at the start is fine: cuts fall before it
    with pytest.raises(ValueError, match="chunk_chars=0 must be at least 1"):
        next(safe_chunks(text, chunk_chars=0))


def test_only_plain_byte_level_bpe_is_encoded_through_tiktoken():
    text = "one two three two one " * 50
    assert tiktoken_encoding(train_char_tokenizer(text)) is None
    assert tiktoken_encoding(train_word_tokenizer(text, num_words=10)) is None
    prefixed = train_bpe_tokenizer(text, vocab_size=300)
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert tiktoken_encoding(prefixed) is None
    truncating = train_bpe_tokenizer(text, vocab_size=300)
    assert tiktoken_encoding(truncating) is not None
    truncating.enable_truncation(max_length=8)
    assert tiktoken_encoding(truncating) is None


def test_stdlib_source_reads_sorted_top_level_modules():
    documents = StdlibSource().read()
    names = [Path(document.name).name for document in documents]
    assert names == sorted(names) and "os.py" in names and all(name.endswith(".py") for name in names)
    assert 3_000_000 < sum(len(text_of(document)) for document in documents) < 8_000_000


def test_text_files_source_reads_globs_and_jsonl(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.md").write_text("first")
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n\n{"body": "y"}\n')
    documents = TextFilesSource(str(tmp_path / "*"), text_field="body").read()
    assert [text_of(d) for d in documents] == [text_of(d) for d in documents] == ["first", "second", "x", "y"]  # read afresh each time
    (tmp_path / "d.jsonl").write_text('{"text": "line\u2028separator"}\n{"text": "caf\xe9"}\n')
    assert [text_of(d) for d in TextFilesSource(str(tmp_path / "d.jsonl")).read()] == ["line\u2028separator", "caf\xe9"]
    with pytest.raises(ValueError, match=r"c.jsonl line 1 has no string field 'text' \(its fields: .*\); set data.source.text_field"):
        list(TextFilesSource(str(tmp_path / "c.jsonl")).read())
    (tmp_path / "f.jsonl").write_text('{"text": "fine"}\n["a", "list"]\n')
    with pytest.raises(ValueError, match=r"f.jsonl line 2 is not a JSON object with named fields: '\[\"a\", \"list\"\]'"):
        list(TextFilesSource(str(tmp_path / "f.jsonl")).read())
    (tmp_path / "e.jsonl").write_bytes('{"text": "\xe9"}\n{"text": "caf'.encode() + b'\xe9"}\n')
    with pytest.raises(ValueError, match=r"e.jsonl is not valid UTF-8: byte 0xe9 at byte offset 28"):
        list(TextFilesSource(str(tmp_path / "e.jsonl")).read())


@pytest.mark.parametrize(
    "name, make, error, message",
    [
        ("missing.txt", lambda p: None, FileNotFoundError, "does not exist"),
        ("nomatch/*.txt", lambda p: None, FileNotFoundError, "matches no file"),
        ("folder", lambda p: p.mkdir(), IsADirectoryError, "is a directory"),
        ("latin1.txt", lambda p: p.write_bytes(b"caf\xe9 au lait"), ValueError, "byte 0xe9 at byte offset 3"),
    ],
)
def test_text_files_source_bad_input(tmp_path, name, make, error, message):
    make(tmp_path / name)
    with pytest.raises(error, match=message) as raised:
        [text_of(document) for document in TextFilesSource(str(tmp_path / name)).read()]
    assert isinstance(raised.value, UserInputError)  # reported in one paragraph with exit status 2


def test_text_files_source_can_replace_invalid_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    assert [text_of(d) for d in TextFilesSource(str(tmp_path / "latin1.txt"), encoding_errors="replace").read()] == ["caf\ufffd"]


def test_tinyshakespeare_offline_without_file_explains_how_to_supply_it(tmp_path):
    source = TinyShakespeareSource(url="http://127.0.0.1:9/input.txt", sha256=SHAKESPEARE_SHA256, cache_dir=str(tmp_path))
    with pytest.raises(UserInputError, match=r"data.path=/path/to/input.txt"):
        source.read()
    assert not (tmp_path / "tinyshakespeare" / "input.txt").exists()


def test_empty_corpus_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserInputError, match=r"Corpus file .*empty.txt is empty"):
        TextFilesSource(str(tmp_path / "empty.txt")).read()


def test_unreadable_corpus_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text("text")

    def permission_denied(self, mode="r"):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(tmp_path), "open", permission_denied)
    with pytest.raises(UserInputError, match=r"secret.txt exists but cannot be read"):
        TextFilesSource(str(tmp_path / "secret.txt")).read()


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_chunked_encoding_is_exact_on_code_with_tabs_and_blank_lines(kind, tmp_path, monkeypatch):
    sentences = "".join(f"sentence {i} ends with a space \ncrlf {i}\r\ntab {i}\t\nnbsp {i}\u00a0\n\u3000{i}\n" for i in range(300))
    text = "".join(text_of(document) for document in StdlibSource().read()[:12]) + sentences + "\tindented\n\n\n  spaced \n"
    tokenizer = train_char_tokenizer(text) if kind == "char" else train_bpe_tokenizer(text, vocab_size=600)
    assert len(list(safe_chunks(text, chunk_chars=500))) > 50
    assert max(map(len, safe_chunks(sentences, chunk_chars=500))) < 600  # lines ending in spaces still cut
    assert encoded(tokenizer, text, tmp_path, monkeypatch).tolist() == tokenizer.encode(text).ids


def test_characters_and_bytes_per_token_count_the_text_exactly(tmp_path, monkeypatch):
    text = "plain ascii, then caf\u00e9, na\u00efve \u2014 \u65e5\u672c\u8a9e \u2713 " * 30
    assert len(text.encode()) - len(text) == 30 * 12  # 2-byte and 3-byte characters: bytes differ from characters
    for tokenizer in (train_char_tokenizer(text[:200]), train_bpe_tokenizer(text, vocab_size=300)):
        ids = encoded(tokenizer, text + "\u00d8", tmp_path, monkeypatch)  # one character unseen by the char tokenizer
        assert characters_per_token(tokenizer)[ids].sum() == len(text) + 1
        unseen_bytes = 1 if tokenizer.token_to_id("<unk>") is not None else len("\u00d8".encode())  # <unk> counts one byte
        assert bytes_per_token(tokenizer)[ids].sum() == len(text.encode()) + unseen_bytes
