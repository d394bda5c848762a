"""``python -m framework.wandb_sweep``: the wandb_sweep command (``framework.cli.wandb_sweep``)."""

from framework.cli.wandb_sweep import main

if __name__ == "__main__":
    main()
