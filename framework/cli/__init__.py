"""The entry points. Commands that take configuration (train, evaluate, generate, predict,
export) are Hydra apps (``@hydra.main``: ``--help``, ``--cfg``, ``-m`` and launchers work for
each); commands that take only paths and flags (compare, reproduce, consolidate, wandb_sweep)
use argparse. Each module is thin: it composes, checks, calls ``framework.run`` and prints."""
