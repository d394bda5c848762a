"""Tokenizers (HF ``tokenizers``), selected by ``conf/tokenizer``."""

from framework.tokenizer.bpe import train_bpe_tokenizer
from framework.tokenizer.char import train_char_tokenizer
from framework.tokenizer.characters import bytes_per_token, characters_per_token, unknown_token_id
from framework.tokenizer.encoding import encode_to_file, encoded_chunks, safe_chunks, token_dtype, tokenizer_hash
from framework.tokenizer.from_file import FILE_TOKENIZER, tokenizer_from_file
from framework.tokenizer.word import train_word_tokenizer
from framework.tokenizer.wordpiece import train_wordpiece_tokenizer

__all__ = [
    "FILE_TOKENIZER",
    "bytes_per_token",
    "characters_per_token",
    "encode_to_file",
    "encoded_chunks",
    "safe_chunks",
    "token_dtype",
    "tokenizer_from_file",
    "tokenizer_hash",
    "train_bpe_tokenizer",
    "train_char_tokenizer",
    "train_word_tokenizer",
    "train_wordpiece_tokenizer",
    "unknown_token_id",
]
