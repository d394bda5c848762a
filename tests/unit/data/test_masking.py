"""BERT's masking: proportions, special tokens, determinism, resume; WordPiece and the encoding."""

import math

import numpy as np
import pytest

from framework.data.classification_datamodule import EncodedSplit
from framework.data.labelled import encode_padded, pad_id
from framework.data.masking import IGNORE_INDEX, FixedMasks, MaskedSamples, MaskingScheme, check_mask_probability
from framework.errors import ConfigError
from framework.tokenizer import tokenizer_hash, train_wordpiece_tokenizer

SPECIAL = (0, 1, 2, 3, 4)
SCHEME = MaskingScheme(mask_id=4, vocab_size=1000, special_ids=SPECIAL)


def sentences(shakespeare_path, count=2000):
    lines = [line for line in shakespeare_path.read_text().split("\n") if line.strip()]
    return lines[:count]


def test_masking_selects_15_percent_of_real_tokens_and_replaces_80_10_10():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, (400, 64))
    mask = np.arange(64)[None, :] < rng.integers(10, 65, (400, 1))
    ids[:, 0], ids[~mask] = 2, 0  # [CLS] first, [PAD] after the text
    inputs, labels = SCHEME.apply(ids, mask, np.random.default_rng(1))
    selected = labels != IGNORE_INDEX
    eligible = mask & (ids != 2)
    n = int(eligible.sum())
    assert not (selected & ~eligible).any()  # never padding, never a special token
    assert (labels[selected] == ids[selected]).all()
    assert (inputs[~selected] == ids[~selected]).all()  # unselected positions untouched
    share = selected.sum() / n
    assert abs(share - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)
    k = int(selected.sum())
    masked = (inputs[selected] == 4).sum() / k
    kept = (inputs[selected] == ids[selected]).sum() / k  # kept, or a random id that happens to be the same
    assert abs(masked - 0.8) < 4 * math.sqrt(0.8 * 0.2 / k)
    assert abs(kept - (0.1 + 0.1 / 1000)) < 4 * math.sqrt(0.1 * 0.9 / k)


def test_a_training_sample_is_masked_by_seed_and_index_alone_so_resumed_runs_agree():
    rng = np.random.default_rng(0)
    split = EncodedSplit(rng.integers(5, 1000, (50, 16)), np.ones((50, 16), dtype=bool))
    samples = MaskedSamples(split, 200, seed=7, scheme=SCHEME)
    resumed = MaskedSamples(split, 200, seed=7, scheme=SCHEME)
    resumed.first_sample = 120
    for index in (0, 1, 49, 50):
        assert all((a == b).all() for a, b in zip(samples[120 + index], resumed[index]))
    other_seed = MaskedSamples(split, 200, seed=8, scheme=SCHEME)
    assert [samples[i][0].tolist() for i in range(10)] != [other_seed[i][0].tolist() for i in range(10)]
    same_row = samples._permutation(1).tolist().index(samples._permutation(0)[0])  # example of sample 0, in epoch 1
    assert (samples[0][0] != samples[50 + same_row][0]).any() or (samples[0][2] != samples[50 + same_row][2]).any()


def test_validation_masks_are_the_same_for_every_run():
    split = EncodedSplit(np.random.default_rng(0).integers(5, 1000, (30, 16)), np.ones((30, 16), dtype=bool))
    first, second = FixedMasks(split, SCHEME), FixedMasks(split, SCHEME)
    assert (first.inputs == second.inputs).all() and (first.labels == second.labels).all()


@pytest.mark.parametrize("probability", [0.0, 1.0, -0.1, 1.5])
def test_a_masking_probability_outside_0_1_is_refused(probability):
    with pytest.raises(ConfigError, match=rf"task.mask_probability={probability} must be in \(0, 1\)"):
        check_mask_probability(probability)


def test_wordpiece_has_berts_special_ids_and_the_same_ids_every_time(shakespeare_path):
    text = "\n".join(sentences(shakespeare_path))
    first, second = train_wordpiece_tokenizer(text, vocab_size=600), train_wordpiece_tokenizer(text, vocab_size=600)
    assert tokenizer_hash(first) == tokenizer_hash(second)
    assert [first.id_to_token(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert first.get_vocab_size() == 600
    encoding = first.encode("First Citizen:")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]" and "first" in encoding.tokens
    assert first.decode(encoding.ids) == "first citizen :"


def test_encoding_cuts_the_text_and_keeps_cls_and_sep(shakespeare_path):
    tokenizer = train_wordpiece_tokenizer("\n".join(sentences(shakespeare_path)), vocab_size=600)
    text = "Before we proceed any further, hear me speak."
    whole = tokenizer.encode(text).ids
    for truncation, expected in (("post", whole[:7] + [3]), ("pre", [2] + whole[-7:-1] + [3])):
        ids, mask = encode_padded(tokenizer, [text, "speak"], 8, "post", truncation, pad_id(tokenizer))
        assert ids[0].tolist() == expected and mask[0].all()
        assert ids[1].tolist() == [2, tokenizer.token_to_id("speak"), 3, 0, 0, 0, 0, 0] and mask[1].sum() == 3


def test_a_wordpiece_vocabulary_too_small_is_refused():
    with pytest.raises(ConfigError, match=r"tokenizer.vocab_size=5 must be at least 6"):
        train_wordpiece_tokenizer("some text", vocab_size=5)
