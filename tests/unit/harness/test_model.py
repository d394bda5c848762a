"""The harness adapter against lm-evaluation-harness's own expectations: log-likelihoods are
sums of the model's token log-probabilities, rolling windows are the harness's, long contexts
are cut from the left, batching changes nothing, generation stops where asked."""

import pytest
import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from framework.errors import ConfigError
from framework.harness.model import HarnessModel, prefix_token
from framework.models import GPT
from framework.tokenizer import train_bpe_tokenizer
from framework.tokenizer.char import train_char_tokenizer

BLOCK = 32


@pytest.fixture(scope="module")
def text(shakespeare_path):
    return shakespeare_path.read_text()[:20_000]


@pytest.fixture(scope="module")
def tokenizer(text):
    return train_char_tokenizer(text)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return GPT(vocab_size=tokenizer.get_vocab_size(), block_size=BLOCK, n_layer=2, n_head=2, n_embd=32, dropout=0.0).eval()


def log_probabilities(model, inputs: list[int], targets: list[int]) -> list[float]:
    """The model's log-probability of each target after reading ``inputs`` whole (no padding, no batching)."""
    with torch.no_grad():
        logits = model(torch.tensor([inputs]))[0, -len(targets) :].float()
    return F.log_softmax(logits, dim=-1).gather(1, torch.tensor(targets)[:, None]).squeeze(1).tolist()


def greedy(model, inputs: list[int], targets: list[int]) -> bool:
    """Whether every target is the model's most likely next token."""
    with torch.no_grad():
        return model(torch.tensor([inputs]))[0, -len(targets) :].argmax(dim=-1).tolist() == targets


def request(kind, *arguments):
    return Instance(request_type=kind, doc={}, arguments=arguments, idx=0)


def test_loglikelihood_is_the_sum_of_the_continuations_token_log_probabilities(model, tokenizer):
    adapter = HarnessModel(model, tokenizer, BLOCK, batch_size=3)
    pairs = [("ROMEO:\nWhat light", " through yonder"), ("First Citizen:", "\nBefore we proceed"), ("Speak", ", speak.")]
    ids = tokenizer.encode("ROMEO:\nWhat light").ids
    with torch.no_grad():  # the untrained model's own most likely next character: a continuation that is greedy
        pairs.append(("ROMEO:\nWhat light", tokenizer.decode([int(model(torch.tensor([ids]))[0, -1].argmax())])))
    results = adapter.loglikelihood([request("loglikelihood", context, continuation) for context, continuation in pairs])
    for (context, continuation), (value, is_greedy) in zip(pairs, results):
        context_ids, continuation_ids = tokenizer.encode(context).ids, tokenizer.encode(continuation).ids
        inputs = (context_ids + continuation_ids)[:-1]
        assert value == pytest.approx(sum(log_probabilities(model, inputs, continuation_ids)), abs=1e-4)
        assert is_greedy == greedy(model, inputs, continuation_ids)
    assert [is_greedy for _, is_greedy in results] == [False, False, False, True]


def test_a_context_cut_inside_a_word_scores_exactly_the_continuations_text(text):
    bpe = train_bpe_tokenizer(text, vocab_size=400, special_tokens=["<|endoftext|>"])
    torch.manual_seed(0)
    model = GPT(vocab_size=bpe.get_vocab_size(), block_size=BLOCK, n_layer=1, n_head=2, n_embd=16).eval()
    adapter = HarnessModel(model, bpe, BLOCK)
    context, continuation = "Speak.\n\nFirst Cit", "izen:\nYou are"
    assert bpe.encode(context + continuation).ids[: len(bpe.encode(context).ids)] != bpe.encode(context).ids  # " Citizen" is one token
    context_ids, continuation_ids = adapter._encode_pair(context, continuation)
    assert context_ids == bpe.encode(context).ids and bpe.decode(continuation_ids) == continuation
    ((value, _),) = adapter.loglikelihood([request("loglikelihood", context, continuation)])
    assert value == pytest.approx(sum(log_probabilities(model, (context_ids + continuation_ids)[:-1], continuation_ids)), abs=1e-4)
    # at a word boundary the joint encoding splits cleanly and is used as the harness's own
    assert adapter._encode_pair("First Citizen:\nBefore we", " proceed") == (
        bpe.encode("First Citizen:\nBefore we").ids,
        bpe.encode(" proceed").ids,
    )


def test_a_context_longer_than_the_block_is_cut_from_the_left(model, tokenizer, text):
    adapter = HarnessModel(model, tokenizer, BLOCK)
    context, continuation = text[:500], text[500:510]
    ((value, _),) = adapter.loglikelihood([request("loglikelihood", context, continuation)])
    ids = tokenizer.encode(context + continuation).ids
    assert value == pytest.approx(sum(log_probabilities(model, ids[-BLOCK - 1 : -1], ids[-10:])), abs=1e-4)


def test_results_do_not_depend_on_the_batch(model, tokenizer, text):
    pairs = [(text[i : i + 5 + i % 40], text[i + 5 + i % 40 : i + 12 + i % 40]) for i in range(0, 3000, 97)]
    requests = [request("loglikelihood", *pair) for pair in pairs]
    one = HarnessModel(model, tokenizer, BLOCK, batch_size=1).loglikelihood(requests)
    many = HarnessModel(model, tokenizer, BLOCK, batch_size=8).loglikelihood(requests)
    assert [greedy for _, greedy in one] == [greedy for _, greedy in many]
    assert max(abs(a - b) for (a, _), (b, _) in zip(one, many)) < 1e-4


def test_rolling_loglikelihood_sums_the_harnesss_own_windows(model, tokenizer, text):
    adapter = HarnessModel(model, tokenizer, BLOCK, batch_size=4)
    document = text[:300]  # 300 characters: nine windows of 32 tokens and one of 12
    (total,) = adapter.loglikelihood_rolling([request("loglikelihood_rolling", document)])
    ids = tokenizer.encode(document).ids
    windows = [make_disjoint_window(window) for window in get_rolling_token_windows(ids, adapter.prefix_token_id, BLOCK, 1)]
    assert len(windows) == 10 and sum(len(targets) for _, targets in windows) == len(ids) == 300
    expected = sum(sum(log_probabilities(model, (context + targets)[:-1], targets)) for context, targets in windows)
    assert total == pytest.approx(expected, abs=1e-3)
    assert adapter.prefix_token_id == tokenizer.token_to_id("\n")  # a character tokenizer: the newline


def test_the_prefix_token_is_end_of_text_where_the_tokenizer_has_it(text):
    bpe = train_bpe_tokenizer(text, vocab_size=300, special_tokens=["<|endoftext|>"])
    assert prefix_token(bpe) == bpe.token_to_id("<|endoftext|>")


def test_generation_is_greedy_and_stops_at_the_first_stop_string(model, tokenizer):
    adapter = HarnessModel(model.train(), tokenizer, BLOCK)  # scored in eval mode, handed back in training mode
    (free,) = adapter.generate_until([request("generate_until", "ROMEO:\n", {"until": [], "max_gen_toks": 12})])
    ids = tokenizer.encode("ROMEO:\n").ids
    for _ in range(12):
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids[-BLOCK:]]))[0, -1].argmax()))
    assert free == tokenizer.decode(ids[-12:])
    stop = free[3:5]
    (stopped,) = adapter.generate_until([request("generate_until", "ROMEO:\n", {"until": [stop], "max_gen_toks": 12})])
    assert stopped == free[: free.index(stop)]
    assert model.training
    model.eval()


def test_a_continuation_longer_than_the_block_is_refused_naming_the_limit(model, tokenizer, text):
    adapter = HarnessModel(model, tokenizer, BLOCK)
    with pytest.raises(ConfigError, match=r"continuation of 40 tokens .* context of 32 tokens \(data.block_size\)"):
        adapter.loglikelihood([request("loglikelihood", "a", text[:40])])
