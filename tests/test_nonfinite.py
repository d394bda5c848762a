"""DeviceNonFiniteGuard: fused optimizers skip steps with a non-finite loss, counted on the device."""

import math

import pytest
import torch

from framework.tasks.nonfinite import DeviceNonFiniteGuard, skips_steps_on_device


def fused_adamw() -> tuple[torch.nn.Parameter, torch.optim.AdamW]:
    weight = torch.nn.Parameter(torch.ones(4))
    return weight, torch.optim.AdamW([weight], lr=0.1, fused=True)


def test_a_bad_micro_batch_skips_its_whole_step_and_the_next_step_runs():
    weight, optimizer = fused_adamw()
    guard = DeviceNonFiniteGuard(optimizer)
    guard.record(torch.tensor(float("nan")), step=1)
    guard.record(torch.tensor(2.5), step=1)  # a later, finite micro-batch of the same step
    weight.grad = torch.ones(4)
    optimizer.step()
    assert torch.equal(weight.detach(), torch.ones(4))
    assert optimizer.state[weight]["step"].item() == 0
    assert torch.equal(optimizer.state[weight]["exp_avg"], torch.zeros(4))

    guard.step_done()
    guard.record(torch.tensor(2.0), step=2)
    optimizer.step()
    assert optimizer.state[weight]["step"].item() == 1
    assert torch.allclose(weight.detach(), torch.full((4,), 1 - 0.1 * 0.01 - 0.1), atol=1e-6)  # decay, then lr * sign

    guard.record(torch.tensor(float("-inf")), step=3)
    found = guard.read()
    assert (found.count, found.first_step) == (2, 1)
    assert math.isnan(found.first_loss)


def test_only_fused_optimizers_are_guarded():
    weight = torch.nn.Parameter(torch.ones(2))
    assert skips_steps_on_device(torch.optim.SGD([weight], lr=0.1, fused=True))
    assert not skips_steps_on_device(torch.optim.AdamW([weight], lr=0.1))
    with pytest.raises(ValueError, match="AdamW cannot skip steps on the device; use a fused torch Adam, AdamW or SGD"):
        DeviceNonFiniteGuard(torch.optim.AdamW([weight], lr=0.1))
