"""lm-framework: config-driven training of language models with Hydra and PyTorch Lightning.

Subpackages mirror the config groups in ``conf/``: ``data``, ``tokenizer``, ``models``
(``conf/model``), ``tasks`` (``conf/task``), ``optim`` (``conf/optimizer`` and
``conf/scheduler``), ``logger`` and ``callbacks``. Entry point: ``python -m framework.train``.
"""
