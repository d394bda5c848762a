"""data.train_examples, tokenizer=file and the room special tokens need: values and refusals."""

import pytest

from framework.data.labelled import LabelledTextFiles, encode_padded
from framework.errors import ConfigError, DataError, MissingInputError
from framework.tokenizer import tokenizer_from_file, train_wordpiece_tokenizer


def sst2(shared_data, **settings) -> LabelledTextFiles:
    return LabelledTextFiles(path=str(shared_data / "sst2"), train_file="train.tsv", val_file="dev.tsv", **settings)


def test_train_examples_is_one_fixed_draw_in_file_order(shared_data):
    texts, labels = sst2(shared_data).read("train")
    subset, subset_labels = sst2(shared_data, train_examples=1000).read("train")
    again, _ = sst2(shared_data, train_examples=1000).read("train")
    assert len(subset) == len(subset_labels) == 1000 and subset == again
    positions = [texts.index(text) for text in subset[:50]]
    assert positions == sorted(positions)  # file order kept
    assert len(sst2(shared_data, train_examples=1000).read("val")[0]) == 872  # the other splits whole


def test_train_examples_out_of_range_are_refused(shared_data):
    with pytest.raises(ConfigError, match=r"data.train_examples=0 must be null \(all\) or at least 1"):
        sst2(shared_data, train_examples=0)
    with pytest.raises(DataError, match=r"data.train_examples=100000, but .*train.tsv has only 67349 examples"):
        sst2(shared_data, train_examples=100_000).read("train")


def test_tokenizer_file_reads_a_saved_tokenizer_and_refuses_others(tmp_path):
    tokenizer = train_wordpiece_tokenizer("a witty , seductive movie\nanother movie", vocab_size=40)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    assert tokenizer_from_file(path=str(tmp_path / "tokenizer.json")).to_str() == tokenizer.to_str()
    with pytest.raises(MissingInputError, match=r"tokenizer.path=.*missing.json does not exist"):
        tokenizer_from_file(path=str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"tokenizer.path=.*bad.json is not a tokenizer.json file"):
        tokenizer_from_file(path=str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match=r"data.max_length=2 leaves no room for text beside the tokenizer's 2 special tokens"):
        encode_padded(tokenizer, ["a movie"], 2, "post", "post", 0)
