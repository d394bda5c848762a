import math

import pytest
import torch

from framework.models import GPT
from framework.optim import build_optimizer, constant, parameter_groups, warmup_cosine


def gpt():
    return GPT(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128, bias=True)


def test_weight_decay_applies_to_matrices_only():
    model = gpt()
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for p in decay["params"] + no_decay["params"]) == model.num_parameters()
    # 2 blocks x (4 Linear weights) + token and position embeddings; the tied head is not repeated
    assert len(decay["params"]) == 2 * 4 + 2


def test_build_optimizer_from_config():
    optimizer = build_optimizer(gpt(), {"_target_": "torch.optim.AdamW", "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.1})
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    sgd = build_optimizer(gpt(), {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0})
    assert sgd.param_groups[0]["momentum"] == 0.9


def lrs(scheduler, steps):
    """The learning rate used by each of the first ``steps`` optimizer updates."""
    optimizer = scheduler.optimizer
    used = []
    for _ in range(steps):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return used


def sgd(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_warmup_cosine_schedule_values():
    used = lrs(warmup_cosine(sgd(1e-3), warmup_steps=10, max_steps=110, min_lr=1e-4), 115)
    assert used[0] == pytest.approx(1e-4)  # update 1 of 10 warmup updates
    assert used[9] == pytest.approx(1e-3)  # update 10: the peak
    assert used[59] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 0.5)) * 9e-4)  # halfway through decay
    assert used[109] == pytest.approx(1e-4) and used[114] == pytest.approx(1e-4)  # floor at and after max_steps
    assert all(a >= b for a, b in zip(used[9:], used[10:]))


def test_constant_schedule_with_warmup():
    assert lrs(constant(sgd(0.5), warmup_steps=4, max_steps=10), 6) == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
@pytest.mark.parametrize("warmup_steps", [20, 100])
def test_a_warmup_longer_than_the_run_is_cut_to_a_tenth_of_it_with_one_warning(schedule, warmup_steps, caplog):
    build = {
        "cosine": lambda: warmup_cosine(sgd(1.0), warmup_steps, max_steps=20, min_lr=0.0),
        "constant": lambda: constant(sgd(1.0), warmup_steps, max_steps=20),
    }
    used = lrs(build[schedule](), 20)
    assert used[:2] == pytest.approx([0.5, 1.0])  # 2 warmup steps: 20 // 10
    warnings = [record.message for record in caplog.records if "warmup_steps" in record.message]
    assert warnings == [
        f"scheduler.warmup_steps={warmup_steps} does not end before trainer.max_steps=20; warming up for 2 steps (a tenth of the run) instead."
    ]


def test_a_warmup_that_ends_before_the_run_is_kept(caplog):
    assert lrs(constant(sgd(1.0), warmup_steps=19, max_steps=20), 2) == pytest.approx([1 / 19, 2 / 19])
    assert not caplog.records
