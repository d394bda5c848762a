"""lm-framework: config-driven training of language models with Hydra and PyTorch Lightning.

Layers, from the top (``docs/architecture.md``; ``.importlinter`` enforces them):

- ``framework.cli``: the entry points, one module per command, each thin; ``python -m
  framework.<command>`` and the ``lmf-<command>`` console scripts call them.
- ``framework.run``: a run as a whole: config checks, recipes, training, the run record,
  loading a finished run, evaluation, inference and export, sweeps.
- Library packages that mirror the config groups in ``conf/``: ``data``, ``tokenizer``,
  ``models`` (``conf/model``), ``tasks`` (``conf/task``), ``optim`` (``conf/optimizer`` and
  ``conf/scheduler``), ``strategy``, ``logger``, ``callbacks``, and ``checkpointing``. They never
  import the two layers above.
- ``errors``, ``process_env`` and ``cpus``: shared by all.
"""
