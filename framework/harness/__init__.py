"""Downstream evaluation through EleutherAI's lm-evaluation-harness (the ``[eval]`` extra):
the adapter (``model``), the tasks that ship with the framework (``shipped``), running them
offline (``evaluation``). Importing this package does not import ``lm_eval``."""
