"""Sample text from a trained language model.

    python -m framework.generate run_dir=logs/runs/<run> prompt="ROMEO:" max_new_tokens=200 \\
      temperature=0.8 top_k=40 top_p=0.95 num_samples=3 seed=1337 [checkpoint=best|last|<file>]

The same seed gives the same samples. The prompt is encoded with the run's tokenizer; a GPT
sees at most its last ``block_size`` tokens (longer prompts are cropped from the front). Samples
are printed one after another, separated by a line of dashes.
"""

from __future__ import annotations

import sys

from framework.cli import user_errors_exit
from framework.errors import ConfigError
from framework.loading import LoadedRun, load_run, parse_arguments
from framework.report import sample_texts
from framework.tasks import LanguageModelingTask

SETTINGS = {
    "run_dir": (str, None), "checkpoint": (str, "best"), "prompt": (str, "\n"), "max_new_tokens": (int, 200),
    "temperature": (float, 1.0), "top_k": (int, None), "top_p": (float, None), "num_samples": (int, 1), "seed": (int, 1337),
}
SEPARATOR = "-" * 40


def generate_text(
    run: LoadedRun, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, num_samples: int = 1, seed: int = 1337,
) -> list[str]:
    """``num_samples`` continuations of ``prompt`` (prompt included), decoded; seeded.

    Raises:
        ConfigError: the run is not a language model, a prompt without tokens, or a setting out of range.
    """
    if not isinstance(run.task, LanguageModelingTask):
        raise ConfigError(f"{run.run_dir} is a {type(run.task).__name__} run; generation needs a language model (use framework.predict for classifiers).")
    try:
        return sample_texts(run.task.model, run.tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, num_samples, seed)
    except ValueError as error:
        raise ConfigError(f"{error} (framework.generate)") from None


def main(arguments: list[str] | None = None) -> list[str]:
    with user_errors_exit():
        settings, data_overrides = parse_arguments(sys.argv[1:] if arguments is None else arguments, SETTINGS, usage=__doc__)
        if data_overrides:
            raise ConfigError(f"framework.generate takes no data overrides ({', '.join(data_overrides)}).")
        run = load_run(settings.pop("run_dir"), settings.pop("checkpoint"))
        samples = generate_text(run, **settings)
    print(f"\n{SEPARATOR}\n".join(samples))
    return samples


if __name__ == "__main__":
    main()
