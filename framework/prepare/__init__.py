"""Corpus preparation on datatrove (``python -m framework.prepare``, configs in ``conf/prepare``):
read, clean, filter, deduplicate, train a tokenizer and tokenize into shards that training maps
from disk (``data=prepared``)."""
