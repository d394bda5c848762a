"""Exporting a finished run's model for use outside this framework.

``format=safetensors`` writes ``model.safetensors`` (the ``nn.Module``'s weights, tied weights
once), ``config.json`` (the model's ``_target_`` and arguments, the task, class names and the
padding settings a classifier was trained with) and ``tokenizer.json``. ``format=hf`` writes a Hugging Face ``transformers`` directory, plus
``tokenizer.json`` (writing it needs no ``transformers``): GPT-2 for GPT runs
(``GPT2LMHeadModel.from_pretrained`` loads it), BERT for masked-LM runs (``BertForMaskedLM``). The output directory
defaults to ``<run_dir>/export-<format>`` and must not exist yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.errors import ConfigError
from framework.models import GPT, BertMaskedLM
from framework.run.loading import LoadedRun, load_run
from framework.run.recipes import model_constructor_config
from framework.transfer.hf import bert_hf_config, gpt2_hf_config, ours_to_bert, ours_to_gpt2


def export_safetensors(run: LoadedRun, output: Path) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``tokenizer.json`` into ``output``."""
    from safetensors.torch import save_model

    output.mkdir(parents=True)
    save_model(run.task.model, str(output / "model.safetensors"))
    config: dict[str, Any] = {
        "model": {**model_constructor_config(run.config), **run.metadata.get("model_arguments", {})},
        "task": run.config.task._target_,
        "step": run.step,
    }
    if run.kind == "classification":
        config["label_names"] = run.label_names
        config["data"] = {**{key: run.config.data[key] for key in ("max_length", "padding", "truncation")}, "pad_id": run.pad_id}
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    run.tokenizer.save(str(output / "tokenizer.json"))
    return output


def export_hf(run: LoadedRun, output: Path) -> Path:
    """Write a Hugging Face directory of the run's model (:func:`export_gpt2` or :func:`export_bert`).

    Raises:
        ConfigError: the run's model is neither a GPT nor a masked-LM BERT.
    """
    model = run.task.model
    if isinstance(model, GPT):
        return export_gpt2(run, model, output)
    if isinstance(model, BertMaskedLM):
        return export_bert(run, model, output)
    raise ConfigError(
        f"format=hf exports GPT (GPT-2 layout) and masked-LM BERT models (BERT layout); the model of {run.run_dir} is "
        f"{type(model).__name__}. Use format=safetensors."
    )


def export_bert(run: LoadedRun, model: BertMaskedLM, output: Path) -> Path:
    """Write a Hugging Face ``BertForMaskedLM`` directory: ``config.json``, ``model.safetensors``
    (BERT's names; the decoder tied to the word embeddings) and ``tokenizer.json``."""
    from safetensors.torch import save_file

    architecture = {**model_constructor_config(run.config), **run.metadata.get("model_arguments", {})}
    config = bert_hf_config(architecture, model.config.dropout, run.tokenizer.token_to_id("[PAD]"))
    output.mkdir(parents=True)
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(ours_to_bert(model.state_dict(), model.config.n_layer), str(output / "model.safetensors"), metadata={"format": "pt"})
    run.tokenizer.save(str(output / "tokenizer.json"))
    return output


def export_gpt2(run: LoadedRun, model: GPT, output: Path) -> Path:
    """Write a Hugging Face GPT-2 directory: ``config.json``, ``model.safetensors`` (GPT-2's
    parameter names and layouts; the LM head is tied to ``transformer.wte``) and ``tokenizer.json``.

    The config names the run's activation (``gelu``, exact as ``nn.GELU``, or ``gelu_new``, the
    tanh approximation) and LayerNorm epsilon 1e-5, so ``GPT2LMHeadModel.from_pretrained`` gives
    our logits to float rounding.
    """
    from safetensors.torch import save_file

    hf_config = gpt2_hf_config(model.config)
    weights = {name: value for name, value in ours_to_gpt2(model).items() if name != "lm_head.weight"}
    output.mkdir(parents=True)
    (output / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    save_file(weights, str(output / "model.safetensors"), metadata={"format": "pt"})
    run.tokenizer.save(str(output / "tokenizer.json"))
    return output


EXPORTERS = {"safetensors": export_safetensors, "hf": export_hf}


def export(run_dir: str | Path, format: str = "safetensors", output: str | Path | None = None, checkpoint: str = "best") -> Path:
    """Export ``run_dir``'s ``checkpoint`` in ``format`` to ``output``; return the directory.

    Raises:
        ConfigError: an unknown format, an output that exists, or a model ``format`` cannot hold.
    """
    if format not in EXPORTERS:
        raise ConfigError(f"format={format!r} must be one of {', '.join(EXPORTERS)}.")
    destination = Path(output).expanduser() if output else Path(run_dir).expanduser() / f"export-{format}"
    if destination.exists():
        raise ConfigError(f"output={destination} already exists; choose a new directory (nothing is overwritten).")
    return EXPORTERS[format](load_run(run_dir, checkpoint), destination)
