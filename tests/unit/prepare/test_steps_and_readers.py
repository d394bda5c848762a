"""The preparation's own steps and readers, on real text (framework.prepare.steps, .readers)."""

import gzip
import json

import pytest
from datatrove.data import Document

from framework.errors import ConfigError, DataError, MissingInputError
from framework.prepare.readers import JsonlFileReader, TextFileReader, input_files
from framework.prepare.steps import CleanText, LengthFilter, SplitFilter, normalized_text, validation_document


def documents(texts):
    return [Document(text=text, id=str(index)) for index, text in enumerate(texts)]


def test_cleaning_normalizes_and_drops_documents_left_empty():
    cleaned = list(CleanText(["newlines", "nfc", "strip_control"]).run(documents(["Cafe\u0301\r\nok\x07", "\x00\x01"])))
    assert [document.text for document in cleaned] == ["Café\nok"]
    with pytest.raises(ConfigError, match=r"Unknown filters.clean.steps step\(s\) \[.lowercase.\]"):
        CleanText(["lowercase"])


def test_length_filter_keeps_the_bounds_inclusive():
    step = LengthFilter(min_chars=3, max_chars=5)
    assert [step.filter(document) for document in documents(["ab", "abc", "abcde", "abcdef"])] == [
        (False, "too_short"),
        True,
        True,
        (False, "too_long"),
    ]
    with pytest.raises(ConfigError, match="min_chars=5 and max_chars=2"):
        LengthFilter(min_chars=5, max_chars=2)


def test_the_split_depends_on_the_text_alone_and_has_the_configured_fraction(shakespeare_path):
    paragraphs = [text for text in shakespeare_path.read_text().split("\n\n") if text.strip()]
    in_val = [validation_document(text, 0.1) for text in paragraphs]
    assert in_val == [validation_document(text, 0.1) for text in paragraphs]
    # a binomial count: 7,222 paragraphs at p = 0.1 has a standard deviation of 25
    assert abs(sum(in_val) - 0.1 * len(paragraphs)) < 4 * (len(paragraphs) * 0.1 * 0.9) ** 0.5
    assert validation_document("a  b\n", 0.1) == validation_document("a b", 0.1)  # copies that dedup merges share a split
    train, val = SplitFilter("train", 0.1), SplitFilter("val", 0.1)
    assert all(train.filter(document) != val.filter(document) for document in documents(paragraphs[:200]))
    assert normalized_text(Document(text=" To be,\n\tor  not ", id="0")) == "To be, or not"


def test_readers_name_the_file_and_line_of_bad_input(tmp_path, shakespeare_path):
    good, bad_json, no_field, truncated = (tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl.gz"))
    good.write_text('{"text": "first"}\n\n{"text": "second"}\n')
    bad_json.write_text('{"text": "fine"}\n{"text": broken}\n')
    no_field.write_text('{"body": "x"}\n')
    compressed = gzip.compress(json.dumps({"text": shakespeare_path.read_text()[:20_000]}).encode())
    truncated.write_bytes(compressed[: len(compressed) // 2])
    assert [document.text for document in JsonlFileReader([good], "text", "strict").run()] == ["first", "second"]
    with pytest.raises(DataError, match=r"b.jsonl line 2 is not valid JSON"):
        list(JsonlFileReader([bad_json], "text", "strict").run())
    with pytest.raises(DataError, match=r"c.jsonl line 1 has no string field 'text' \(its fields: body\); set input.text_field"):
        list(JsonlFileReader([no_field], "text", "strict").run())
    with pytest.raises(DataError, match=r"d.jsonl.gz is not a complete gzip file"):
        list(JsonlFileReader([truncated], "text", "strict").run())

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    with pytest.raises(DataError, match=r"byte 0xe9 at byte offset 3.*input.encoding_errors=replace"):
        list(TextFileReader([latin1]).run())
    (replaced,) = TextFileReader([latin1], encoding_errors="replace").run()
    assert replaced.text == "caf\ufffd au lait"


def test_input_files_are_checked_before_any_work(tmp_path):
    with pytest.raises(MissingInputError, match=r"input.path='.*\*.jsonl' matches no file"):
        input_files(str(tmp_path / "*.jsonl"))
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "b.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"suffixes \['.jsonl', '.txt'\]"):
        input_files(str(tmp_path / "*"))
    (tmp_path / "c.csv").write_text("x")
    with pytest.raises(ConfigError, match=r"suffixes \['.csv'\]"):
        input_files(str(tmp_path / "c.csv"))
    assert input_files(str(tmp_path / "*.jsonl")) == [(tmp_path / "a.jsonl").resolve()]
