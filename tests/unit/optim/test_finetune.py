"""Fine-tuning options: learning rates by part and depth, a frozen body, their errors."""

import pytest
import torch

from framework.errors import ConfigError
from framework.models import GPT, BertClassifier, LSTMClassifier
from framework.optim import FineTuning, build_optimizer, frozen_at_start, parameter_groups, warmup_cosine

BERT = dict(vocab_size=50, num_outputs=1, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


def test_layer_decay_and_head_lr_give_each_part_its_rate():
    model = BertClassifier(**BERT)
    groups = parameter_groups(model, 0.01, lr=1.0, finetune=FineTuning(head_lr=5.0, layer_decay=0.5))
    rates = {group["name"]: group["lr"] for group in groups}
    # depths: embeddings 0, blocks 1 and 2, the top (3) is the head's
    assert rates == {
        "decay/layer0": 0.125,
        "no_decay/layer0": 0.125,
        "decay/layer1": 0.25,
        "no_decay/layer1": 0.25,
        "decay/layer2": 0.5,
        "no_decay/layer2": 0.5,
        "decay/head": 5.0,
        "no_decay/head": 5.0,
    }
    grouped = [p for group in groups for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    assert all(group["weight_decay"] == (0.01 if group["name"].startswith("decay") else 0.0) for group in groups)


def test_without_options_the_groups_are_the_plain_decay_and_no_decay():
    groups = parameter_groups(BertClassifier(**BERT), 0.1, lr=1.0, finetune=FineTuning())
    assert [group["name"] for group in groups] == ["decay", "no_decay"]


def test_a_frozen_body_is_bitwise_unchanged_until_freeze_steps_then_trains():
    torch.manual_seed(0)
    model = BertClassifier(**BERT)
    optimizer = build_optimizer(model, {"_target_": "torch.optim.AdamW", "lr": 1e-2, "weight_decay": 0.1}, FineTuning(freeze_steps=3))
    scheduler = frozen_at_start(warmup_cosine(optimizer, warmup_steps=0, max_steps=10, min_lr=0.0))
    body = {name: p.detach().clone() for name, p in model.named_parameters() if not name.startswith("head.")}
    head = model.head.weight.detach().clone()
    ids, mask = torch.randint(0, 50, (4, 8)), torch.ones(4, 8, dtype=torch.bool)
    for step in range(5):
        model(ids, mask).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        unchanged = all(torch.equal(p, body[name]) for name, p in model.named_parameters() if name in body)
        assert unchanged == (step < 3), step  # the first 3 updates have rate 0
    assert not torch.equal(model.head.weight, head)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(layer_decay=0.0), r"finetune.layer_decay=0.0 must be in \(0, 1\]"),
        (dict(layer_decay=1.5), r"finetune.layer_decay=1.5 must be in \(0, 1\]"),
        (dict(head_lr=-1.0), r"finetune.head_lr=-1.0 must be null"),
        (dict(freeze_steps=-2), r"finetune.freeze_steps=-2 must be 0 or more"),
    ],
)
def test_fine_tuning_options_out_of_range_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        FineTuning(**options)


def test_options_a_model_cannot_take_are_refused():
    with pytest.raises(ConfigError, match=r"finetune.layer_decay=0.8 needs a model with layers ordered by depth.*LSTMClassifier"):
        FineTuning(layer_decay=0.8).check_model(LSTMClassifier(50, 1))
    with pytest.raises(ConfigError, match=r"finetune.head_lr and finetune.freeze_steps act on a task head.*GPT does not"):
        FineTuning(freeze_steps=10).check_model(GPT(vocab_size=50, block_size=8, n_layer=1, n_head=1, n_embd=8))
