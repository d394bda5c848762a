"""Weights from elsewhere: Hugging Face ``transformers`` checkpoints read and written without
``transformers`` (``framework.transfer.hf``)."""
