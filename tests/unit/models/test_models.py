import pytest
import torch

from framework.models import GPT, LSTMLanguageModel, generate

SHAKESPEARE_CHAR = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)


def test_shakespeare_char_gpt_has_nanogpt_parameter_count():
    model = GPT(**SHAKESPEARE_CHAR)
    assert model.num_parameters() == 804_096
    assert model.num_parameters(non_embedding=True) == 795_904  # nanoGPT prints "0.80M"


def test_gpt_output_shape_and_dtype():
    model = GPT(**SHAKESPEARE_CHAR)
    logits = model(torch.randint(0, 65, (3, 17)))
    assert logits.shape == (3, 17, 65) and logits.dtype == torch.float32


@pytest.mark.parametrize(
    "model",
    [GPT(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32), LSTMLanguageModel(50, n_embd=32, hidden_size=32)],
    ids=["gpt", "lstm"],
)
def test_changing_token_t_leaves_earlier_logits_unchanged(model):
    model.eval()
    torch.manual_seed(0)
    idx = torch.randint(0, 50, (2, 16))
    changed = idx.clone()
    t = 9
    changed[:, t] = (idx[:, t] + 1) % 50
    before, after = model(idx), model(changed)
    assert torch.equal(before[:, :t], after[:, :t])
    assert not torch.allclose(before[:, t], after[:, t])


def test_gpt_tied_weights_share_storage():
    model = GPT(**SHAKESPEARE_CHAR)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()


def test_lstm_tied_weights_share_storage_and_untied_do_not():
    tied = LSTMLanguageModel(100, n_embd=64, hidden_size=64, tie_weights=True)
    untied = LSTMLanguageModel(100, n_embd=64, hidden_size=64, tie_weights=False)
    assert tied.lm_head.weight.data_ptr() == tied.embedding.weight.data_ptr()
    assert untied.num_parameters() - tied.num_parameters() == 100 * 64


def test_gpt_residual_projections_use_scaled_init():
    torch.manual_seed(0)
    model = GPT(vocab_size=100, block_size=16, n_layer=8, n_head=4, n_embd=256)
    c_proj_std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    c_fc_std = model.transformer.h[0].mlp.c_fc.weight.std().item()
    assert c_proj_std == pytest.approx(0.02 / 4, rel=0.05)  # 0.02 / sqrt(2 * 8)
    assert c_fc_std == pytest.approx(0.02, rel=0.05)


def test_gpt_rejects_context_longer_than_block_size():
    model = GPT(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8)
    with pytest.raises(ValueError, match="9 tokens but the model's block_size is 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_gpt_rejects_n_embd_not_divisible_by_n_head():
    with pytest.raises(ValueError, match="n_embd=100 is not divisible by model.n_head=3"):
        GPT(vocab_size=10, block_size=8, n_layer=1, n_embd=100, n_head=3)


def test_lstm_tying_needs_equal_sizes():
    with pytest.raises(ValueError, match="hidden_size=128 and n_embd=64"):
        LSTMLanguageModel(10, n_embd=64, hidden_size=128, tie_weights=True)


def test_generate_is_seeded_and_crops_to_block_size():
    torch.manual_seed(0)
    model = GPT(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16)
    prompt = torch.randint(0, 30, (2, 12))  # longer than block_size: must be cropped, not fail

    def sample(seed):
        return generate(model, prompt, 20, temperature=0.9, top_k=5, context_size=8, generator=torch.Generator().manual_seed(seed))

    first = sample(1)
    assert first.shape == (2, 32) and torch.equal(first[:, :12], prompt)
    assert torch.equal(first, sample(1))
    assert not torch.equal(first, sample(2))


def test_generate_with_top_k_1_is_greedy():
    torch.manual_seed(0)
    model = LSTMLanguageModel(20, n_embd=16, hidden_size=16)
    model.eval()
    out = generate(model, torch.tensor([[3]]), 5, top_k=1)
    for t in range(1, 6):
        assert out[0, t] == model(out[:, :t])[0, -1].argmax()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_attention_on_cpu_is_computed_in_float32(dtype, monkeypatch):
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(query, key, value, **options):
        calls.append((query.dtype, key.dtype, value.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(query, key, value, **options)

    torch.manual_seed(0)
    model = GPT(**SHAKESPEARE_CHAR)
    idx = torch.randint(0, 65, (4, 64))
    reference = torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.flatten())
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    with torch.autocast("cpu", dtype=dtype):
        logits = model(idx)
    loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), idx.flatten())
    loss.backward()
    assert logits.dtype == dtype
    assert calls == [(torch.float32, torch.float32, torch.float32, False)] * 4  # one per layer, autocast off inside
    assert abs(loss.item() - reference.item()) < 0.01 * reference.item()  # within 1 % of fp32
    model(idx)
    assert calls[-1] == (torch.float32, torch.float32, torch.float32, False)  # fp32 without autocast: unchanged
