"""BERT (masked LM and classifier) and the GPT classifier: shapes, padding, tied weights, options."""

import math

import pytest
import torch

from framework.errors import ConfigError
from framework.models import GPT, BertClassifier, BertMaskedLM, GPTClassifier
from framework.models.classifiers import pooled_states

BERT = dict(vocab_size=120, block_size=24, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
GPT_SIZES = dict(vocab_size=120, block_size=24, n_layer=2, n_head=4, n_embd=32, dropout=0.0)


def padded(ids: torch.Tensor, length: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids`` (T,) in a row of ``length`` padded with id 0 on ``side``, and its mask."""
    row, mask = torch.zeros(length, dtype=torch.long), torch.zeros(length, dtype=torch.bool)
    span = slice(0, len(ids)) if side == "post" else slice(length - len(ids), length)
    row[span], mask[span] = ids, True
    return row[None], mask[None]


def test_bert_masked_lm_shapes_tied_decoder_and_parameter_count():
    model = BertMaskedLM(**BERT)
    ids = torch.randint(0, 120, (3, 24))
    logits = model(ids, torch.ones(3, 24, dtype=torch.bool))
    assert logits.shape == (3, 24, 120) and logits.dtype == torch.float32
    C, V, T, L = 32, 120, 24, 2
    embeddings = V * C + T * C + 2 * C + 2 * C  # tokens, positions, 2 token types, LayerNorm
    block = (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (C * 4 * C + 4 * C) + (4 * C * C + C) + 2 * C
    head = C * C + C + 2 * C + V  # transform dense, LayerNorm, output bias (decoder weight is the embedding)
    assert sum(p.numel() for p in model.parameters()) == embeddings + L * block + head


def test_bert_predict_at_gives_the_full_logits_of_those_positions():
    model = BertMaskedLM(**BERT).eval()
    ids, mask = torch.randint(0, 120, (2, 24)), torch.ones(2, 24, dtype=torch.bool)
    chosen = torch.rand(2, 24) < 0.3
    assert torch.allclose(model(ids, mask, predict_at=chosen), model(ids, mask)[chosen], atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", ["pre", "post"])
@pytest.mark.parametrize(
    "build",
    [lambda: BertClassifier(**BERT, num_outputs=3), lambda: BertClassifier(**BERT, num_outputs=1, pooling="mean")]
    + [lambda: GPTClassifier(**GPT_SIZES, num_outputs=2), lambda: GPTClassifier(**GPT_SIZES, num_outputs=1, pooling="mean")],
    ids=["bert-first", "bert-mean", "gpt-last", "gpt-mean"],
)
def test_padding_never_changes_a_classifier_prediction(build, side):
    torch.manual_seed(0)
    model = build().eval()
    text = torch.randint(1, 120, (9,))
    alone = model(text[None], torch.ones(1, 9, dtype=torch.bool))
    assert torch.allclose(model(*padded(text, 24, side)), alone, atol=1e-5)


def test_bert_masked_lm_with_padding_after_the_text_matches_the_text_alone():
    model = BertMaskedLM(**BERT).eval()
    text = torch.randint(1, 120, (10,))
    alone = model(text[None], torch.ones(1, 10, dtype=torch.bool))
    ids, mask = padded(text, 24, "post")
    assert torch.allclose(model(ids, mask)[:, :10], alone, atol=1e-5)


def test_gpt_classifier_last_token_state_is_the_language_models_last_hidden_state():
    torch.manual_seed(0)
    classifier = GPTClassifier(**GPT_SIZES, num_outputs=1).eval()
    language_model = GPT(**GPT_SIZES).eval()
    language_model.transformer.load_state_dict(classifier.transformer.state_dict())
    ids, mask = padded(torch.randint(1, 120, (7,)), 24, "pre")
    captured = {}
    classifier.head.register_forward_hook(lambda module, inputs, output: captured.setdefault("pooled", inputs[0]))
    classifier(ids, mask)
    language_model.lm_head.register_forward_hook(lambda module, inputs, output: captured.setdefault("final", inputs[0]))
    language_model(ids[:, mask[0]])
    assert torch.allclose(captured["pooled"], captured["final"][:, -1], atol=1e-6)


def test_pooled_states_picks_first_last_and_mean_of_real_tokens():
    states = torch.arange(2 * 5 * 1, dtype=torch.float32).view(2, 5, 1)
    mask = torch.tensor([[False, True, True, True, False], [True, True, False, False, False]])
    assert pooled_states(states, mask, "first").flatten().tolist() == [1.0, 5.0]
    assert pooled_states(states, mask, "last").flatten().tolist() == [3.0, 6.0]
    assert pooled_states(states, mask, "mean").flatten().tolist() == [2.0, 5.5]


def test_gpt_tanh_activation_is_gpt2s_gelu_new():
    model = GPT(**GPT_SIZES, activation="gelu_tanh")
    x = torch.linspace(-4, 4, 101)
    gelu_new = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    assert torch.allclose(model.transformer.h[0].mlp.gelu(x), gelu_new, atol=1e-6)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: BertMaskedLM(**{**BERT, "layer_norm_eps": 0.0}), r"model.layer_norm_eps=0.0 must be > 0"),
        (lambda: BertMaskedLM(**{**BERT, "type_vocab_size": 0}), r"model.type_vocab_size=0 must be a positive integer"),
        (lambda: BertClassifier(**BERT, num_outputs=1, pooling="last"), r"model.pooling='last' must be one of first, mean"),
        (lambda: GPTClassifier(**GPT_SIZES, num_outputs=1, pooling="first"), r"model.pooling='first' must be one of last, mean"),
        (lambda: GPT(**GPT_SIZES, activation="relu"), r"model.activation='relu' must be one of gelu, gelu_tanh"),
        (lambda: GPT(**GPT_SIZES, n_inner=0), r"model.n_inner=0 must be null"),
    ],
)
def test_invalid_encoder_settings_are_refused(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_parameter_depths_order_embeddings_blocks_and_head():
    depths = BertClassifier(**BERT, num_outputs=1).parameter_depths()
    assert depths["encoder.wte.weight"] == depths["encoder.ln_e.weight"] == 0
    assert depths["encoder.h.0.attn.c_attn.weight"] == 1 and depths["encoder.h.1.ln_2.bias"] == 2
    assert depths["head.weight"] == 3
    gpt_depths = GPTClassifier(**GPT_SIZES, num_outputs=1).parameter_depths()
    assert gpt_depths["transformer.wpe.weight"] == 0 and gpt_depths["transformer.h.1.mlp.c_fc.weight"] == 2
    assert gpt_depths["transformer.ln_f.weight"] == gpt_depths["head.bias"] == 3
