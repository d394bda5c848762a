"""Loading pretrained tensors into a model by name (framework.run.pretrained.load_pretrained)."""

import pytest
import torch
from tokenizers import Tokenizer, models

from framework.errors import CheckpointMismatchError
from framework.models import GPT, BertClassifier, BertMaskedLM, GPTClassifier
from framework.run.pretrained import Pretrained, load_pretrained

SIZES = dict(block_size=16, n_layer=2, n_head=2, n_embd=16)


def source(model: torch.nn.Module) -> Pretrained:
    return Pretrained("run", model.state_dict(), Tokenizer(models.WordLevel({"a": 0}, unk_token="a")), {}, None)


def test_matching_tensors_load_and_the_head_stays_new():
    torch.manual_seed(0)
    language_model = GPT(vocab_size=40, **SIZES)
    classifier = GPTClassifier(vocab_size=40, num_outputs=2, **SIZES)
    head = classifier.head.weight.detach().clone()
    report = load_pretrained(classifier, source(language_model))
    assert report["new"] == ["head.weight", "head.bias"] and report["unused"] == ["lm_head.weight"]
    assert len(report["loaded"]) == len(language_model.transformer.state_dict())
    assert all(
        torch.equal(value, language_model.state_dict()[name]) for name, value in classifier.state_dict().items() if name in report["loaded"]
    )
    assert torch.equal(classifier.head.weight, head)


def test_a_tensor_of_another_shape_is_named_with_both_shapes():
    with pytest.raises(
        CheckpointMismatchError, match=r"transformer.wte.weight: pretrained \(40, 16\), model \(41, 16\).*vocabularies differ"
    ):
        load_pretrained(GPTClassifier(vocab_size=41, num_outputs=1, **SIZES), source(GPT(vocab_size=40, **SIZES)))


def test_a_source_of_another_architecture_is_refused():
    with pytest.raises(
        CheckpointMismatchError,
        match=r"another architecture: it holds encoder\.\*, mlm\.\*, the configured model GPT needs transformer\.\*, lm_head\.\*",
    ):
        load_pretrained(GPT(vocab_size=40, **SIZES), source(BertMaskedLM(vocab_size=40, **SIZES)))


def test_an_mlm_encoder_loads_into_a_bert_classifier():
    masked_lm = BertMaskedLM(vocab_size=40, **SIZES)
    report = load_pretrained(BertClassifier(vocab_size=40, num_outputs=3, **SIZES), source(masked_lm))
    assert report["new"] == ["head.weight", "head.bias"] and {name.split(".")[0] for name in report["unused"]} == {"mlm"}


def test_a_head_of_another_shape_is_new_like_a_missing_one():
    three_classes = BertClassifier(vocab_size=40, num_outputs=3, **SIZES)
    report = load_pretrained(BertClassifier(vocab_size=40, num_outputs=1, **SIZES), source(three_classes))
    assert report["new"] == ["head.weight", "head.bias"] and report["unused"] == ["head.weight", "head.bias"]


def test_init_from_and_tokenizer_paths_are_stored_absolute_keeping_the_hf_prefix(tmp_path):
    from omegaconf import OmegaConf

    from framework.run.stored_config import make_paths_absolute

    for given, stored in (("runs/pre", f"{tmp_path}/runs/pre"), ("hf:models/bert", f"hf:{tmp_path}/models/bert"), ("/abs/run", "/abs/run")):
        cfg = OmegaConf.create({"model": {"init_from": given}, "tokenizer": {"path": "runs/pre/tokenizer.json"}})
        make_paths_absolute(cfg, tmp_path)
        assert cfg.model.init_from == stored and cfg.tokenizer.path == f"{tmp_path}/runs/pre/tokenizer.json"


def test_fine_tuning_options_without_a_source_warn_that_the_model_starts_fresh(caplog):
    from omegaconf import OmegaConf

    from framework.run.pretrained import pretrained_start

    cfg = OmegaConf.create({"model": {"init_from": None}, "finetune": {"head_lr": 1e-3, "layer_decay": 0.9, "freeze_steps": 0}})
    with caplog.at_level("WARNING", logger="framework.run.pretrained"):
        assert pretrained_start(cfg, None) == (None, None)
    assert "finetune.* is set but model.init_from is null" in caplog.text
    caplog.clear()
    cfg.finetune = {"head_lr": None, "layer_decay": 1.0, "freeze_steps": 0}
    pretrained_start(cfg, None)
    assert caplog.text == ""
