"""Using a finished run's model: sampling text from a language model, labelling texts with a classifier."""

from __future__ import annotations

import torch

from framework.data.labelled import encode_padded
from framework.errors import ConfigError
from framework.run.loading import LoadedRun
from framework.run.report import sample_texts


def generate_text(
    run: LoadedRun,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_samples: int = 1,
    seed: int = 1337,
) -> list[str]:
    """``num_samples`` continuations of ``prompt`` (prompt included), decoded; seeded
    (``framework.run.report.sample_texts``).

    Raises:
        ConfigError: the run is not a language model, a prompt without tokens, or a setting out of range.
    """
    if run.kind != "language_modeling":
        raise ConfigError(
            f"{run.run_dir} is a {run.kind} run; generation needs a language model (framework.predict takes classifiers; a "
            "masked-LM run is evaluated, exported with format=hf, or fine-tuned with model.init_from=<run>)."
        )
    try:
        return sample_texts(run.task.model, run.tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, num_samples, seed)
    except ValueError as error:
        raise ConfigError(f"{error} (framework.generate)") from None


@torch.no_grad()
def predict(run: LoadedRun, texts: list[str], batch_size: int = 256) -> list[tuple[str, float]]:
    """``(label, probability)`` of the most probable class for each text, encoded exactly as in
    training (tokenizer, ``max_length``, padding and truncation sides), ``batch_size`` at a time.

    Raises:
        ConfigError: the run is not a classifier, or ``batch_size`` < 1.
    """
    if run.kind != "classification":
        raise ConfigError(
            f"{run.run_dir} is a {run.kind} run; prediction needs a classifier (framework.generate takes language models; a "
            "masked-LM run is evaluated, exported with format=hf, or fine-tuned with model.init_from=<run>)."
        )
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    data = run.config.data
    ids, mask = encode_padded(run.tokenizer, texts, data.max_length, data.padding, data.truncation, run.pad_id)
    predictions = []
    for start in range(0, len(texts), batch_size):
        probabilities = run.task(torch.from_numpy(ids[start : start + batch_size]), torch.from_numpy(mask[start : start + batch_size]))
        best, classes = probabilities.max(dim=1)
        predictions += [(run.label_names[index], probability) for index, probability in zip(classes.tolist(), best.tolist())]
    return predictions
