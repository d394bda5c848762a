"""NonFiniteLossGuard and DeviceNonFiniteGuard: fused optimizers skip steps with a non-finite loss, counted on the device."""

import math

import pytest
import torch

from framework.callbacks.nonfinite import DeviceNonFiniteGuard, NonFiniteLosses, NonFiniteLossGuard, skips_steps_on_device


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
    guard.record(torch.tensor(float("inf")), step=4)
    assert guard.read() == NonFiniteLosses(count=3, first_step=4, first_loss=float("inf"))  # the first since the last read
    assert guard.read().first_step == -1


def test_only_fused_adam_and_adamw_are_guarded():
    weight = torch.nn.Parameter(torch.ones(2))
    assert skips_steps_on_device(torch.optim.Adam([weight], lr=0.1, fused=True))
    assert skips_steps_on_device(torch.optim.AdamW([weight], lr=0.1, fused=True))
    assert not skips_steps_on_device(torch.optim.AdamW([weight], lr=0.1))
    # Fused SGD honours found_inf too, but a skipped first step leaves its momentum buffer uninitialised.
    assert not skips_steps_on_device(torch.optim.SGD([weight], lr=0.1, momentum=0.9, fused=True))
    with pytest.raises(ValueError, match="AdamW cannot skip steps on the device; use torch's Adam or AdamW with fused=True"):
        DeviceNonFiniteGuard(torch.optim.AdamW([weight], lr=0.1))


def test_the_device_check_is_used_on_one_cuda_process_with_fused_adamw_and_no_gradient_scaler():
    from types import SimpleNamespace

    from pytorch_lightning.plugins.precision import MixedPrecision, Precision

    from framework.models import GPT
    from framework.strategy import FSDP2Strategy
    from framework.tasks import LanguageModelingTask

    task = LanguageModelingTask(
        GPT(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16),
        optimizer={"_target_": "torch.optim.AdamW"},
        scheduler={"_target_": "framework.optim.constant", "warmup_steps": 0},
    )
    fused, looped = (torch.optim.AdamW(task.parameters(), fused=flag) for flag in (True, False))
    bf16 = MixedPrecision("bf16-mixed", "cpu")
    fp16 = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))

    def uses(optimizer, device="cuda:0", plugin=bf16, world_size=1, automatic=True, strategy=None):
        task._device, task.automatic_optimization = torch.device(device), automatic
        trainer = SimpleNamespace(precision_plugin=plugin, world_size=world_size, strategy=strategy)
        return NonFiniteLossGuard.uses_device_check(trainer, task, optimizer)

    assert uses(fused) and uses(fused, plugin=Precision())
    assert not uses(fused, device="cpu")  # the host read costs nothing there
    assert not uses(looped)
    assert not uses(fused, plugin=fp16)  # GradScaler owns found_inf
    assert not uses(fused, world_size=2)  # another rank's NaN gradients arrive through the all-reduce
    assert not uses(fused, automatic=False)  # the flag is cleared where Lightning zeroes gradients
    assert not uses(fused, strategy=FSDP2Strategy())  # DTensor parameters
