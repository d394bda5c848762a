"""Exporting a finished run's model for use outside this framework.

``format=safetensors`` writes ``model.safetensors`` (the ``nn.Module``'s weights, tied weights
once), ``config.json`` (the model's ``_target_`` and arguments, the task, class names and the
padding settings a classifier was trained with) and ``tokenizer.json``. ``format=hf`` (GPT
runs only) writes a Hugging Face ``transformers`` GPT-2 directory that
``GPT2LMHeadModel.from_pretrained`` loads, plus ``tokenizer.json`` (writing it needs no
``transformers``). The output directory
defaults to ``<run_dir>/export-<format>`` and must not exist yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from framework.errors import ConfigError
from framework.models import GPT
from framework.run.loading import LoadedRun, load_run
from framework.run.recipes import model_constructor_config

# GPT-2 stores these projections as Conv1D weights, (in_features, out_features): ours transposed.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


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
        config["data"] = {key: run.config.data[key] for key in ("max_length", "padding", "truncation")}
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    run.tokenizer.save(str(output / "tokenizer.json"))
    return output


def gpt2_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our GPT's weights under GPT-2's names and layouts: Conv1D weights transposed, and zero
    biases where the model has none (``bias=false``), which leaves its function unchanged."""
    state = {}
    for name, value in model.state_dict().items():
        state[name] = value.t().contiguous() if name.endswith(CONV1D_WEIGHTS) else value.clone()
    if not model.config.bias:
        for name, value in list(state.items()):
            if name.endswith(".weight") and "wte" not in name and "wpe" not in name and name != "lm_head.weight":
                width = value.shape[-1] if name.endswith(CONV1D_WEIGHTS) else value.shape[0]
                state[name[: -len("weight")] + "bias"] = torch.zeros(width)
    return state


def export_hf(run: LoadedRun, output: Path) -> Path:
    """Write a Hugging Face GPT-2 directory: ``config.json``, ``model.safetensors`` (GPT-2's
    parameter names and layouts; the LM head is tied to ``transformer.wte``) and ``tokenizer.json``.

    No ``transformers`` install is needed to write it. The config uses exact GELU
    (``activation_function="gelu"``, as ``nn.GELU``) and LayerNorm epsilon 1e-5, so
    ``GPT2LMHeadModel.from_pretrained`` gives our logits to float rounding.

    Raises:
        ConfigError: the run's model is not a GPT.
    """
    from safetensors.torch import save_file

    model = run.task.model
    if not isinstance(model, GPT):
        raise ConfigError(
            f"format=hf exports GPT models only; the model of {run.run_dir} is {type(model).__name__}. Use format=safetensors."
        )
    config = model.config
    hf_config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": "gelu",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": None,
        "torch_dtype": "float32",
    }
    weights = {name: value for name, value in gpt2_state_dict(model).items() if name != "lm_head.weight"}
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
