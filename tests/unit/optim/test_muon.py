"""optimizer=muon: which parameters Muon trains, the groups' rates, one optimizer to torch and
Lightning (state, checkpoints), and the combinations refused before any work."""

import copy
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from framework.errors import ConfigError
from framework.models import GPT, LSTMClassifier, LSTMLanguageModel
from framework.optim import FineTuning, MuonAdamW, build_optimizer, hidden_matrices
from framework.run.training import optimizer_group_names

MUON = OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parents[3] / "conf" / "optimizer" / "muon.yaml"))
GPT_SIZES = dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)


def names(model, parameters):
    by_id = {id(parameter): name for name, parameter in model.named_parameters()}
    return [by_id[id(parameter)] for parameter in parameters]


def test_muon_trains_the_block_and_lstm_matrices_and_adamw_the_rest():
    gpt = GPT(**GPT_SIZES)
    assert names(gpt, hidden_matrices(gpt)) == [
        f"transformer.h.{layer}.{name}.weight" for layer in (0, 1) for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    ]
    lstm = LSTMLanguageModel(vocab_size=40, n_embd=16, hidden_size=16, n_layer=2)
    assert names(lstm, hidden_matrices(lstm)) == [f"lstm.weight_{kind}_l{layer}" for layer in (0, 1) for kind in ("ih", "hh")]
    classifier = LSTMClassifier(vocab_size=40, num_outputs=2, n_embd=16, hidden_size=16)
    assert "head.weight" not in names(classifier, hidden_matrices(classifier))  # the output layer stays with AdamW


def test_each_group_gets_its_optimizer_rate_and_weight_decay():
    gpt = GPT(**GPT_SIZES)
    optimizer = build_optimizer(gpt, MUON)
    summary = [(group["name"], len(group["params"]), group["lr"], group["weight_decay"]) for group in optimizer.param_groups]
    # 8 block matrices; wte (tied to lm_head) and wpe decayed by AdamW; (2 LayerNorms x 2 + 4 biases) x 2 blocks + ln_f x 2 without
    assert summary == [("muon", 8, 0.02, 0.0), ("decay", 2, 1e-3, 0.1), ("no_decay", 18, 1e-3, 0.0)]
    assert optimizer.muon.param_groups == optimizer.param_groups[:1] and optimizer.adamw.param_groups == optimizer.param_groups[1:]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(gpt.parameters()))


def test_fine_tuning_parts_scale_muons_rate_as_adamws():
    gpt = GPT(**GPT_SIZES)
    optimizer = build_optimizer(gpt, {**MUON, "lr": 0.5}, FineTuning(layer_decay=0.5))
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    # blocks 0 and 1 are depths 1 and 2 of 3: AdamW's 0.5 * 0.5^2 and 0.5 * 0.5, Muon's 0.02 times the same factors
    assert rates["muon/layer1"] == pytest.approx(0.02 * 0.25) and rates["muon/layer2"] == pytest.approx(0.02 * 0.5)
    assert rates["no_decay/layer1"] == pytest.approx(0.125) and rates["decay/layer0"] == pytest.approx(0.0625)


def test_group_names_checked_on_resume_are_the_optimizers_own():
    gpt = GPT(**GPT_SIZES)
    cfg = OmegaConf.create({"optimizer": MUON, "finetune": None})
    assert optimizer_group_names(gpt, cfg) == [group["name"] for group in build_optimizer(gpt, MUON).param_groups]


def loss_of(model, batch):
    return torch.nn.functional.cross_entropy(model(batch).flatten(0, 1), batch.flatten())


def test_a_restored_optimizer_continues_bitwise_as_the_uninterrupted_one():
    torch.manual_seed(0)
    batches = [torch.randint(0, 40, (4, 16)) for _ in range(6)]
    model = GPT(**GPT_SIZES)
    restored_model = copy.deepcopy(model)
    optimizer = build_optimizer(model, MUON)
    for batch in batches[:3]:
        optimizer.zero_grad()
        loss_of(model, batch).backward()
        optimizer.step()
    restored_model.load_state_dict(model.state_dict())
    restored = build_optimizer(restored_model, MUON)
    restored.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert restored.muon.state is restored.state and restored.muon.param_groups[0] is restored.param_groups[0]
    for batch in batches[3:]:
        for each_model, each_optimizer in ((model, optimizer), (restored_model, restored)):
            each_optimizer.zero_grad()
            loss_of(each_model, batch).backward()
            each_optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), restored_model.state_dict().values()))
    momentum = restored.state[model_parameter(restored_model, "transformer.h.0.attn.c_attn.weight")]
    assert set(momentum) == {"momentum_buffer"}  # Muon's state, kept through the checkpoint


def model_parameter(model, name):
    return dict(model.named_parameters())[name]


def test_muon_is_refused_with_fsdp_and_negative_rates_before_any_work(checked_config):
    with pytest.raises(ConfigError, match="optimizer=muon cannot run under strategy=fsdp"):
        checked_config(["optimizer=muon", "strategy=fsdp", "trainer.accelerator=cpu"])
    with pytest.raises(ConfigError, match=r"optimizer.muon.lr=-0.1 must be >= 0"):
        checked_config(["optimizer=muon", "optimizer.muon.lr=-0.1"])
    assert checked_config(["optimizer=muon", "strategy=ddp", "trainer.accelerator=cpu"]).optimizer._target_ == "framework.optim.MuonAdamW"


def test_the_composite_is_a_torch_optimizer_for_lightning_and_schedulers():
    optimizer = build_optimizer(GPT(**GPT_SIZES), MUON)
    assert isinstance(optimizer, torch.optim.Optimizer) and isinstance(optimizer, MuonAdamW)
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)  # sets every group's rate at once
    assert [group["lr"] for group in optimizer.muon.param_groups + optimizer.adamw.param_groups] == [0.01, 5e-4, 5e-4]
