"""Hugging Face ``transformers`` checkpoints in and out, without ``transformers``: GPT-2
(``GPT2LMHeadModel``, ``GPT2Model``) to and from :class:`~framework.models.GPT`, BERT
(``BertForMaskedLM``, ``BertModel``) to and from :class:`~framework.models.BertMaskedLM`.

A directory is read from its ``config.json``, its weights (``model.safetensors`` or
``pytorch_model.bin``) and its tokenizer files (``tokenizer.json``, or GPT-2's ``vocab.json`` +
``merges.txt``, or BERT's ``vocab.txt``), all local; nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from framework.errors import ConfigError, MissingInputError, UnreadableInputError
from framework.models import GPT
from framework.models.gpt import GPTConfig

# transformers' names of the activations our models implement.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
SUPPORTED = {
    "GPT2LMHeadModel": "gpt2",
    "GPT2Model": "gpt2",
    "BertForMaskedLM": "bert",
    "BertModel": "bert",
    "BertForPreTraining": "bert",
}
# config.json's model_type, for a file that names no architectures.
MODEL_TYPES = {"gpt2": "gpt2", "bert": "bert"}
# GPT-2 keeps these projections as Conv1D weights, (in_features, out_features): ours transposed.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# BERT's names of one block's tensors -> ours (the query, key and value are fused into c_attn).
BERT_BLOCK = {
    "attention.output.dense": "attn.c_proj",
    "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "mlp.c_fc",
    "output.dense": "mlp.c_proj",
    "output.LayerNorm": "ln_2",
}
BERT_EMBEDDINGS = {
    "embeddings.word_embeddings": "encoder.wte",
    "embeddings.position_embeddings": "encoder.wpe",
    "embeddings.token_type_embeddings": "encoder.wtt",
    "embeddings.LayerNorm": "encoder.ln_e",
}
BERT_HEAD = {
    "cls.predictions.transform.dense": "mlm.dense",
    "cls.predictions.transform.LayerNorm": "mlm.ln",
}


@dataclass
class HFCheckpoint:
    """A Hugging Face model directory converted to this framework's names.

    Attributes:
        family: ``gpt2`` or ``bert``.
        architecture: the model arguments it implies, named as in ``conf/model``
            (``vocab_size``, ``block_size``, ``n_layer``, ...).
        state: its tensors under our parameter names, in the stored dtype.
        tokenizer: its tokenizer, converted to a ``tokenizers.Tokenizer``.
    """

    family: str
    architecture: dict[str, Any]
    state: dict[str, torch.Tensor]
    tokenizer: Tokenizer


def read_hf_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of ``directory``.

    Raises:
        MissingInputError: no such directory or no ``config.json``.
        UnreadableInputError: a ``config.json`` that is not JSON.
        ConfigError: an architecture this framework cannot load (the supported ones listed), or
            options it does not implement (untied output embeddings, a decoder BERT, GPT-2's
            unscaled attention).
    """
    path = directory / "config.json"
    if not path.is_file():
        raise MissingInputError(f"model.init_from=hf:{directory}: {path} does not exist; give a local Hugging Face model directory.")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UnreadableInputError(f"model.init_from=hf:{directory}: {path} is not valid JSON ({error}).") from None
    if hf_family(config) is None:
        named = (config.get("architectures") or [config.get("model_type", "no architecture")])[0]
        raise ConfigError(
            f"model.init_from=hf:{directory} holds a {named} (config.json architectures); "
            f"the supported architectures are {', '.join(SUPPORTED)}."
        )
    tied = config.get("tie_word_embeddings", True)
    unsupported = [key for key in ("is_decoder", "add_cross_attention") if config.get(key)]
    unsupported += ["tie_word_embeddings=false"] if not tied else []
    unsupported += ["scale_attn_weights=false"] if config.get("scale_attn_weights") is False else []
    if unsupported:
        raise ConfigError(f"model.init_from=hf:{directory} uses options this framework does not implement: {', '.join(unsupported)}.")
    return config


def hf_family(config: dict[str, Any]) -> str | None:
    """``gpt2`` or ``bert`` for a supported ``config.json`` (its first architecture, else its
    ``model_type``), None otherwise."""
    architectures = config.get("architectures")
    if architectures:
        return SUPPORTED.get(architectures[0])
    return MODEL_TYPES.get(config.get("model_type", ""))


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` or, without it, ``pytorch_model.bin`` (loaded with
    ``weights_only``).

    Raises:
        MissingInputError: neither file exists.
    """
    safetensors_path, bin_path = directory / "model.safetensors", directory / "pytorch_model.bin"
    if safetensors_path.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path))
    if bin_path.is_file():
        return torch.load(bin_path, map_location="cpu", weights_only=True)
    raise MissingInputError(f"model.init_from=hf:{directory} has no model.safetensors or pytorch_model.bin.")


def read_hf_tokenizer(directory: Path, family: str) -> Tokenizer:
    """``tokenizer.json``, or the tokenizer built from GPT-2's ``vocab.json`` + ``merges.txt``
    or BERT's ``vocab.txt`` (lower-cased unless ``tokenizer_config.json`` sets ``do_lower_case``
    false).

    Raises:
        MissingInputError: none of those files.
    """
    if (directory / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(directory / "tokenizer.json"))
    if family == "gpt2" and (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        from tokenizers.implementations import ByteLevelBPETokenizer

        built = ByteLevelBPETokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"))
        return Tokenizer.from_str(built.to_str())
    if family == "bert" and (directory / "vocab.txt").is_file():
        from tokenizers.implementations import BertWordPieceTokenizer

        settings = directory / "tokenizer_config.json"
        lowercase = json.loads(settings.read_text()).get("do_lower_case", True) if settings.is_file() else True
        built = BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=lowercase)
        return Tokenizer.from_str(built.to_str())
    wanted = "vocab.json and merges.txt" if family == "gpt2" else "vocab.txt"
    raise MissingInputError(f"model.init_from=hf:{directory} has no tokenizer.json nor {wanted}; the model's tokenizer is needed.")


def _activation(directory: Path, name: str) -> str:
    if name not in HF_ACTIVATIONS:
        raise ConfigError(f"model.init_from=hf:{directory} uses the activation {name!r}; supported: {', '.join(HF_ACTIVATIONS)}.")
    return HF_ACTIVATIONS[name]


def gpt2_architecture(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    """``conf/model/gpt.yaml`` arguments of a GPT-2 ``config.json``.

    Raises:
        ConfigError: options our GPT does not implement (attention scaled by layer index or
            upcast and reordered, LayerNorm epsilon other than 1e-5).
    """
    unsupported = [key for key in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn") if config.get(key)]
    if config.get("layer_norm_epsilon", 1e-5) != 1e-5:
        unsupported.append(f"layer_norm_epsilon={config['layer_norm_epsilon']}")
    if unsupported:
        raise ConfigError(f"model.init_from=hf:{directory} uses GPT-2 options this framework does not implement: {', '.join(unsupported)}.")
    return {
        "vocab_size": config["vocab_size"],
        "block_size": config["n_positions"],
        "n_layer": config["n_layer"],
        "n_head": config["n_head"],
        "n_embd": config["n_embd"],
        "n_inner": config.get("n_inner"),
        "bias": True,
        "activation": _activation(directory, config.get("activation_function", "gelu_new")),
    }


def bert_architecture(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    """``conf/model/bert.yaml`` arguments of a BERT ``config.json``.

    Raises:
        ConfigError: relative position embeddings (only BERT's absolute ones are implemented).
    """
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(
            f"model.init_from=hf:{directory} uses position_embedding_type={config['position_embedding_type']!r}; only 'absolute' is supported."
        )
    return {
        "vocab_size": config["vocab_size"],
        "block_size": config["max_position_embeddings"],
        "n_layer": config["num_hidden_layers"],
        "n_head": config["num_attention_heads"],
        "n_embd": config["hidden_size"],
        "n_inner": config["intermediate_size"],
        "activation": _activation(directory, config.get("hidden_act", "gelu")),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
        "type_vocab_size": config.get("type_vocab_size", 2),
    }


def gpt2_to_ours(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GPT-2 tensors -> :class:`~framework.models.GPT` names: ``transformer.`` prefixed (as
    ``GPT2Model`` saves without it), Conv1D weights transposed, the causal-mask buffers dropped,
    ``lm_head.weight`` the token embedding (tied)."""
    state = {}
    for name, value in weights.items():
        name = name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"
        if name.endswith((".attn.bias", ".attn.masked_bias")) or name == "lm_head.weight":
            continue
        state[name] = value.t().contiguous() if name.endswith(CONV1D_WEIGHTS) else value
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def _strip_bert_prefix(name: str) -> str:
    name = name.removeprefix("bert.")
    return name.replace(".gamma", ".weight").replace(".beta", ".bias")  # TF-converted checkpoints


def bert_to_ours(weights: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """BERT tensors -> :class:`~framework.models.BertMaskedLM` names: query, key and value
    fused into ``c_attn`` (in that order), the MLM head's transform and bias as ``mlm.*``; the
    pooler, the next-sentence head, the tied decoder weight and the position-id buffer dropped."""
    weights = {_strip_bert_prefix(name): value for name, value in weights.items()}
    state = {}
    for theirs, ours in {**BERT_EMBEDDINGS, **BERT_HEAD}.items():
        for suffix in ("weight", "bias"):
            if f"{theirs}.{suffix}" in weights:
                state[f"{ours}.{suffix}"] = weights[f"{theirs}.{suffix}"]
    if "cls.predictions.bias" in weights:
        state["mlm.bias"] = weights["cls.predictions.bias"]
    for layer in range(n_layer):
        prefix = f"encoder.layer.{layer}."
        for suffix in ("weight", "bias"):
            parts = [weights[f"{prefix}attention.self.{part}.{suffix}"] for part in ("query", "key", "value")]
            state[f"encoder.h.{layer}.attn.c_attn.{suffix}"] = torch.cat(parts, dim=0)
            for theirs, ours in BERT_BLOCK.items():
                state[f"encoder.h.{layer}.{ours}.{suffix}"] = weights[f"{prefix}{theirs}.{suffix}"]
    return state


def read_hf_checkpoint(directory: str | Path) -> HFCheckpoint:
    """Read and convert a local Hugging Face GPT-2 or BERT directory.

    Raises:
        MissingInputError: a missing directory, config, weights or tokenizer file.
        ConfigError: an unsupported architecture, activation or position embedding.
        UnreadableInputError: weights that lack tensors the config implies.
    """
    directory = Path(directory).expanduser()
    config = read_hf_config(directory)
    family = hf_family(config)
    weights = read_hf_weights(directory)
    try:
        if family == "gpt2":
            architecture, state = gpt2_architecture(directory, config), gpt2_to_ours(weights)
        else:
            architecture = bert_architecture(directory, config)
            state = bert_to_ours(weights, architecture["n_layer"])
    except KeyError as error:
        raise UnreadableInputError(
            f"model.init_from=hf:{directory}: the weights lack {error.args[0]}, which config.json implies."
        ) from None
    return HFCheckpoint(family, architecture, state, read_hf_tokenizer(directory, family))


def ours_to_bert(state: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """:class:`~framework.models.BertMaskedLM` tensors -> ``BertForMaskedLM`` names (the inverse
    of :func:`bert_to_ours`; the decoder weight is tied to the word embeddings, so not stored)."""
    weights = {}
    for theirs, ours in BERT_EMBEDDINGS.items():
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" in state:  # embeddings have no bias
                weights[f"bert.{theirs}.{suffix}"] = state[f"{ours}.{suffix}"]
    for theirs, ours in BERT_HEAD.items():
        for suffix in ("weight", "bias"):
            weights[f"{theirs}.{suffix}"] = state[f"{ours}.{suffix}"]
    weights["cls.predictions.bias"] = state["mlm.bias"]
    for layer in range(n_layer):
        prefix = f"bert.encoder.layer.{layer}."
        for suffix in ("weight", "bias"):
            query, key, value = state[f"encoder.h.{layer}.attn.c_attn.{suffix}"].chunk(3, dim=0)
            for part, tensor in zip(("query", "key", "value"), (query, key, value)):
                weights[f"{prefix}attention.self.{part}.{suffix}"] = tensor
            for theirs, ours in BERT_BLOCK.items():
                weights[f"{prefix}{theirs}.{suffix}"] = state[f"encoder.h.{layer}.{ours}.{suffix}"]
    return {name: value.detach().clone().contiguous() for name, value in weights.items()}


def bert_hf_config(architecture: dict[str, Any], dropout: float, pad_token_id: int | None) -> dict[str, Any]:
    """A ``BertForMaskedLM`` ``config.json`` for a model of ``conf/model/bert.yaml`` arguments."""
    activation = {"gelu": "gelu", "gelu_tanh": "gelu_new"}[architecture["activation"]]
    return {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": architecture["vocab_size"],
        "max_position_embeddings": architecture["block_size"],
        "num_hidden_layers": architecture["n_layer"],
        "num_attention_heads": architecture["n_head"],
        "hidden_size": architecture["n_embd"],
        "intermediate_size": architecture["n_inner"] or 4 * architecture["n_embd"],
        "hidden_act": activation,
        "layer_norm_eps": architecture["layer_norm_eps"],
        "type_vocab_size": architecture["type_vocab_size"],
        "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout,
        "position_embedding_type": "absolute",
        "pad_token_id": pad_token_id,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def ours_to_gpt2(model: GPT) -> dict[str, torch.Tensor]:
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


def gpt2_hf_config(config: GPTConfig) -> dict[str, Any]:
    """A ``GPT2LMHeadModel`` ``config.json`` for our GPT: its activation (``gelu``, exact as
    ``nn.GELU``, or ``gelu_new``, the tanh approximation) and LayerNorm epsilon 1e-5, so
    ``from_pretrained`` gives our logits to float rounding."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.n_inner,
        "activation_function": {"gelu": "gelu", "gelu_tanh": "gelu_new"}[config.activation],
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": None,
        "torch_dtype": "float32",
    }
