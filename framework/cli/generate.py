"""Sample text from a finished language-model run: ``lmf-generate`` or ``python -m framework.generate``.

    python -m framework.generate run_dir=logs/runs/<run> prompt="ROMEO:" max_new_tokens=200 \\
      temperature=0.8 top_k=40 top_p=0.95 num_samples=3 seed=1337 [checkpoint=best|last|<file>]

The same seed gives the same samples. The prompt is encoded with the run's tokenizer; a GPT
sees at most its last ``block_size`` tokens (longer prompts are cropped from the front). Samples
are printed one after another, separated by a line of dashes.
"""

from __future__ import annotations

from dataclasses import dataclass

import hydra
from omegaconf import DictConfig

from framework.cli.finished_run import run_finished_run_command
from framework.cli.precheck import CONFIG_DIR, user_errors_exit
from framework.run.inference import generate_text
from framework.run.loading import load_run

SEPARATOR = "-" * 40


@dataclass
class GenerateConfig:
    run_dir: str = "???"  # the finished run's directory
    checkpoint: str = "best"  # best, last or a checkpoint file
    prompt: str = "\n"  # text the samples continue
    max_new_tokens: int = 200  # tokens generated per sample
    temperature: float = 1.0  # logits divided by it (> 0); lower is more conservative
    top_k: int | None = None  # sample among the k most likely tokens; null: all
    top_p: float | None = None  # nucleus: the fewest tokens whose probability reaches p; null: all
    num_samples: int = 1  # samples printed, separated by a line of dashes
    seed: int = 1337  # the same seed gives the same samples


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="generate")
def generate_job(cfg: DictConfig) -> None:
    with user_errors_exit():
        run = load_run(cfg.run_dir, cfg.checkpoint)
        samples = generate_text(run, cfg.prompt, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p, cfg.num_samples, cfg.seed)
    print(f"\n{SEPARATOR}\n".join(samples))


def main() -> None:
    """The console script ``lmf-generate``."""
    run_finished_run_command(generate_job, "generate", GenerateConfig)
