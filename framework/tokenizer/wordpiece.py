"""BERT's WordPiece tokenizer (Wu et al., 2016; Devlin et al., 2019), trained with HF ``tokenizers``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from framework.errors import ConfigError, DataError
from framework.tokenizer.encoding import safe_chunks

# BERT's special tokens, in BERT's id order (ids 0 to 4 of a trained vocabulary).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def bert_post_processor(tokenizer: Tokenizer) -> processors.TemplateProcessing:
    """``[CLS] A [SEP]`` for one text and ``[CLS] A [SEP] B [SEP]`` (B of token type 1) for a pair,
    with ``tokenizer``'s ids of ``[CLS]`` and ``[SEP]``."""
    cls, sep = (tokenizer.token_to_id(token) for token in ("[CLS]", "[SEP]"))
    return processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )


def _private_use_code_points() -> Iterator[str]:
    """Supplementary Private Use Areas A and B, in order."""
    for start, stop in ((0xF0000, 0xFFFFE), (0x100000, 0x10FFFE)):
        yield from map(chr, range(start, stop))


def _word_counts(
    train_text: str | Iterable[str], normalizer: normalizers.Normalizer, pre_tokenizer: pre_tokenizers.PreTokenizer
) -> Counter:
    counts: Counter = Counter()
    for piece in safe_chunks(train_text):
        for line in piece.split("\n"):
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
    return counts


def train_wordpiece_tokenizer(
    train_text: str | Iterable[str], vocab_size: int = 8192, min_frequency: int = 2, lowercase: bool = True
) -> Tokenizer:
    """Train a WordPiece vocabulary on ``train_text`` with BERT's normalizer (accents stripped
    and lower-cased with ``lowercase``, as bert-base-uncased; Chinese characters spaced; control
    characters removed) and pre-tokenizer (whitespace and punctuation split), ``##`` marking
    word continuations.

    The vocabulary is learned as ``tokenizers``' ``WordPieceTrainer`` learns it (BPE merges of
    the words' characters, a word's later characters distinct from its first), with one
    difference: ``WordPieceTrainer`` numbers the ``##`` symbols in hash-map order, which breaks
    ties between equally frequent merges differently from run to run. Here each continuation
    character is first written as a private-use character of its own, so every symbol is part of
    the sorted initial alphabet and the same text always gives the same vocabulary. Ids 0-4 are
    ``[PAD] [UNK] [CLS] [SEP] [MASK]``, the other tokens follow in sorted order. Encoding with
    special tokens wraps a text as ``[CLS] ... [SEP]`` (:func:`bert_post_processor`).

    Args:
        train_text: the training texts, one per line (training split only): one string, or a
            stream of its consecutive blocks.
        vocab_size: ids in the vocabulary, special tokens included (at least 6).
        min_frequency: a pair must occur this many times to be merged.
        lowercase: lower-case and strip accents (uncased BERT) or keep case (cased BERT).

    Raises:
        ConfigError: ``vocab_size`` below 6.
        DataError: ``train_text`` has no words.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ConfigError(f"tokenizer.vocab_size={vocab_size} must be at least {len(SPECIAL_TOKENS) + 1}: the 5 special tokens and a word.")
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = _word_counts(train_text, normalizer, pre_tokenizer)
    if not counts:
        raise DataError("Cannot build a WordPiece tokenizer from training text without words.")
    used = {char for word in counts for char in word}
    continuations = sorted({char for word in counts for char in word[1:]})
    stand_ins = dict(zip(continuations, (point for point in _private_use_code_points() if point not in used)))
    originals = {stand_in: char for char, stand_in in stand_ins.items()}
    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=sorted(used - set(continuations)) + list(originals),
        show_progress=False,
    )
    words = (word[0] + "".join(stand_ins[char] for char in word[1:]) for word, count in counts.items() for _ in range(count))
    learner.train_from_iterator(words, trainer=trainer)
    learned = set(learner.get_vocab()) - set(SPECIAL_TOKENS)
    pieces = sorted(("##" if token[0] in originals else "") + "".join(originals.get(char, char) for char in token) for token in learned)
    vocab = {token: index for index, token in enumerate([*SPECIAL_TOKENS, *pieces])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))  # never split, skipped when decoding; ids unchanged
    tokenizer.post_processor = bert_post_processor(tokenizer)
    return tokenizer
