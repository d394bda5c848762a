"""Hugging Face GPT-2 and BERT weights in and out, against ``transformers`` itself: small models
built from the default ``GPT2Config`` / ``BertConfig`` with only the sizes changed, randomly
initialised, their tokenizer files made here. transformers runs in a subprocess (installed by
`make test` into .test-deps/, outside the venv)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from framework.errors import ConfigError, MissingInputError, UnreadableInputError
from framework.models import GPT, BertMaskedLM
from framework.run.training import train
from framework.tokenizer import tokenizer_hash, train_bpe_tokenizer, train_wordpiece_tokenizer
from framework.transfer.hf import bert_hf_config, gpt2_hf_config, ours_to_bert, ours_to_gpt2, read_hf_checkpoint

pytestmark = pytest.mark.slow
TRANSFORMERS_DIR = Path(__file__).resolve().parents[2] / ".test-deps" / "transformers"
VOCAB = 300

# Builds the models with transformers, saves them, and prints their outputs for the given inputs.
BUILD = """
import json, sys
sys.path.append(sys.argv[1])
import torch, transformers
root, inputs = sys.argv[2], json.loads(sys.argv[3])
ids, mask = torch.tensor(inputs["ids"]), torch.tensor(inputs["mask"])
torch.manual_seed(0)
sizes = dict(vocab_size=300)
gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(**sizes, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()
bert_sizes = dict(**sizes, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, max_position_embeddings=32)
bert = transformers.BertForMaskedLM(transformers.BertConfig(**bert_sizes)).eval()
encoder = transformers.BertModel(transformers.BertConfig(**bert_sizes)).eval()
for name, model in (("gpt2", gpt2), ("bert", bert), ("bert_encoder", encoder)):
    model.save_pretrained(f"{root}/{name}")
with torch.no_grad():
    print(json.dumps({
        "gpt2": gpt2(ids).logits.tolist(),
        "bert": bert(input_ids=ids, attention_mask=mask).logits.tolist(),
        "bert_encoder": encoder(input_ids=ids, attention_mask=mask).last_hidden_state.tolist(),
    }))
"""

# Loads exported directories with transformers and prints their logits.
LOAD = """
import json, sys
sys.path.append(sys.argv[1])
import torch, transformers
inputs = json.loads(sys.argv[4])
ids, mask = torch.tensor(inputs["ids"]), torch.tensor(inputs["mask"])
gpt2 = transformers.GPT2LMHeadModel.from_pretrained(sys.argv[2]).eval()
bert = transformers.BertForMaskedLM.from_pretrained(sys.argv[3]).eval()
with torch.no_grad():
    print(json.dumps({"gpt2": gpt2(ids).logits.tolist(), "bert": bert(input_ids=ids, attention_mask=mask).logits.tolist()}))
"""


def transformers_script(script: str, *arguments: str) -> dict:
    if not (TRANSFORMERS_DIR / "transformers").is_dir():
        pytest.fail(f"transformers is not installed in {TRANSFORMERS_DIR}; `make test` installs it there.", pytrace=False)
    done = subprocess.run([sys.executable, "-c", script, str(TRANSFORMERS_DIR), *arguments], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def inputs() -> dict:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 20), generator=generator)
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0  # padding after the text, as BERT pads
    return {"ids": ids.tolist(), "mask": mask.tolist()}


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory, shakespeare_path, inputs):
    """Directories of a GPT2LMHeadModel, a BertForMaskedLM and a BertModel with tokenizer files
    (GPT-2's vocab.json + merges.txt; BERT's vocab.txt), and transformers' outputs."""
    root = tmp_path_factory.mktemp("hf")
    outputs = transformers_script(BUILD, str(root), json.dumps(inputs))
    text = shakespeare_path.read_text()[:100_000]
    train_bpe_tokenizer(text, vocab_size=VOCAB).model.save(str(root / "gpt2"))
    vocabulary = train_wordpiece_tokenizer(text, vocab_size=VOCAB)
    for name in ("bert", "bert_encoder"):
        vocabulary.model.save(str(root / name))
    return root, outputs


def difference(ours: torch.Tensor, theirs: list) -> float:
    return (ours - torch.tensor(theirs)).abs().max().item()


def test_gpt2_imports_with_transformers_logits_from_safetensors_and_bin(hf_models, inputs, tmp_path):
    root, outputs = hf_models
    ids = torch.tensor(inputs["ids"])
    as_bin = tmp_path / "gpt2_bin"
    shutil.copytree(root / "gpt2", as_bin)
    torch.save(load_file(str(as_bin / "model.safetensors")), as_bin / "pytorch_model.bin")
    (as_bin / "model.safetensors").unlink()
    for directory in (root / "gpt2", as_bin):
        checkpoint = read_hf_checkpoint(directory)
        assert checkpoint.architecture["activation"] == "gelu_tanh"  # GPT-2's gelu_new
        model = GPT(**checkpoint.architecture, dropout=0.0).eval()
        model.load_state_dict(checkpoint.state, strict=True)
        with torch.no_grad():
            assert difference(model(ids), outputs["gpt2"]) < 1e-5
        assert (
            checkpoint.tokenizer.get_vocab_size() == VOCAB
            and checkpoint.tokenizer.decode(checkpoint.tokenizer.encode("To be, or not").ids) == "To be, or not"
        )


def test_bert_masked_lm_and_bert_model_import_with_transformers_outputs(hf_models, inputs):
    root, outputs = hf_models
    ids, mask = torch.tensor(inputs["ids"]), torch.tensor(inputs["mask"]).bool()
    masked_lm = read_hf_checkpoint(root / "bert")
    model = BertMaskedLM(**masked_lm.architecture, dropout=0.0).eval()
    model.load_state_dict(masked_lm.state, strict=True)
    encoder = read_hf_checkpoint(root / "bert_encoder")  # BertModel: no MLM head, a pooler we do not use
    assert not any(name.startswith("mlm.") for name in encoder.state)
    encoder_model = BertMaskedLM(**encoder.architecture, dropout=0.0).eval()
    encoder_model.load_state_dict(encoder.state, strict=False)
    with torch.no_grad():
        assert difference(model(ids, mask)[mask], torch.tensor(outputs["bert"])[mask].tolist()) < 1e-5
        assert difference(encoder_model.encoder(ids, mask)[mask], torch.tensor(outputs["bert_encoder"])[mask].tolist()) < 1e-5
    assert masked_lm.tokenizer.encode("Romeo").tokens[0] == "[CLS]" and masked_lm.tokenizer.token_to_id("[MASK]") is not None


def write_hf_directory(directory: Path, config: dict, weights: dict, tokenizer) -> None:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(directory / "tokenizer.json"))


def test_our_models_load_in_transformers_and_round_trip_byte_identically(hf_models, inputs, tmp_path, shakespeare_path):
    root, _ = hf_models
    text = shakespeare_path.read_text()[:100_000]
    torch.manual_seed(3)
    gpt = GPT(vocab_size=VOCAB, block_size=32, n_layer=2, n_head=4, n_embd=32, bias=False, activation="gelu").eval()
    bert = BertMaskedLM(vocab_size=VOCAB, block_size=32, n_layer=2, n_head=4, n_embd=32, n_inner=48, dropout=0.0).eval()
    bert_architecture = dict(
        vocab_size=VOCAB,
        block_size=32,
        n_layer=2,
        n_head=4,
        n_embd=32,
        n_inner=48,
        activation="gelu",
        layer_norm_eps=1e-12,
        type_vocab_size=2,
    )
    first_gpt, first_bert = tmp_path / "gpt2_first", tmp_path / "bert_first"
    gpt_weights = {name: value for name, value in ours_to_gpt2(gpt).items() if name != "lm_head.weight"}
    write_hf_directory(first_gpt, gpt2_hf_config(gpt.config), gpt_weights, train_bpe_tokenizer(text, vocab_size=VOCAB))
    write_hf_directory(
        first_bert,
        bert_hf_config(bert_architecture, 0.0, 0),
        ours_to_bert(bert.state_dict(), 2),
        train_wordpiece_tokenizer(text, vocab_size=VOCAB),
    )
    theirs = transformers_script(LOAD, str(first_gpt), str(first_bert), json.dumps(inputs))
    ids, mask = torch.tensor(inputs["ids"]), torch.tensor(inputs["mask"]).bool()
    with torch.no_grad():
        assert difference(gpt(ids), theirs["gpt2"]) < 1e-5
        assert difference(bert(ids, mask)[mask], torch.tensor(theirs["bert"])[mask].tolist()) < 1e-5
    # import what was exported, export it again: the same bytes
    gpt_again = read_hf_checkpoint(first_gpt)
    rebuilt = GPT(**gpt_again.architecture)
    rebuilt.load_state_dict(gpt_again.state, strict=True)
    again = {name: value for name, value in ours_to_gpt2(rebuilt).items() if name != "lm_head.weight"}
    save_file(again, str(tmp_path / "gpt2_again.safetensors"), metadata={"format": "pt"})
    assert (tmp_path / "gpt2_again.safetensors").read_bytes() == (first_gpt / "model.safetensors").read_bytes()
    bert_again = read_hf_checkpoint(first_bert)
    rebuilt_bert = BertMaskedLM(**bert_again.architecture)
    rebuilt_bert.load_state_dict(bert_again.state, strict=True)
    save_file(ours_to_bert(rebuilt_bert.state_dict(), 2), str(tmp_path / "bert_again.safetensors"), metadata={"format": "pt"})
    assert (tmp_path / "bert_again.safetensors").read_bytes() == (first_bert / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    "config, error, message",
    [
        (
            {"architectures": ["LlamaForCausalLM"]},
            ConfigError,
            r"holds a LlamaForCausalLM.*supported architectures are GPT2LMHeadModel, GPT2Model, BertForMaskedLM",
        ),
        ({"model_type": "t5"}, ConfigError, r"holds a t5"),
        (
            {"architectures": ["GPT2LMHeadModel"], "tie_word_embeddings": False},
            ConfigError,
            r"does not implement: tie_word_embeddings=false",
        ),
        ({"architectures": ["BertModel"], "is_decoder": True}, ConfigError, r"does not implement: is_decoder"),
        ({"architectures": ["GPT2Model"], "scale_attn_weights": False}, ConfigError, r"does not implement: scale_attn_weights=false"),
        ("{not json", UnreadableInputError, r"config.json is not valid JSON"),
        ({"architectures": ["BertModel"]}, MissingInputError, r"has no model.safetensors or pytorch_model.bin"),
    ],
    ids=["llama", "model-type", "untied", "decoder", "unscaled", "not-json", "no-weights"],
)
def test_a_directory_that_cannot_be_loaded_is_refused_naming_why(tmp_path, config, error, message):
    (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(error, match=message):
        read_hf_checkpoint(tmp_path)


def test_a_missing_directory_or_tokenizer_is_named(hf_models, tmp_path):
    root, _ = hf_models
    with pytest.raises(MissingInputError, match=r"config.json does not exist"):
        read_hf_checkpoint(tmp_path / "nothing")
    shutil.copytree(root / "bert", tmp_path / "bert")
    (tmp_path / "bert" / "vocab.txt").unlink()
    with pytest.raises(MissingInputError, match=r"has no tokenizer.json nor vocab.txt"):
        read_hf_checkpoint(tmp_path / "bert")
    shutil.copytree(root / "gpt2", tmp_path / "gpt2")
    config = json.loads((tmp_path / "gpt2" / "config.json").read_text())
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({**config, "activation_function": "relu"}))
    with pytest.raises(ConfigError, match=r"uses the activation 'relu'; supported: gelu, gelu_new, gelu_pytorch_tanh"):
        read_hf_checkpoint(tmp_path / "gpt2")


def test_runs_train_from_hugging_face_directories(hf_models, shared_data, tmp_path, compose_config, caplog):
    root, _ = hf_models
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "train.tsv").write_text("\n".join((shared_data / "sst2" / "train.tsv").read_text().split("\n")[:401]) + "\n")
    (folder / "dev.tsv").write_text("\n".join((shared_data / "sst2" / "dev.tsv").read_text().split("\n")[:101]) + "\n")
    common = ["data=sst2", f"data.path={folder}", "data.max_length=32", "data.batch_size=8", "model.n_layer=2", "model.n_head=4"]
    common += ["model.n_embd=32", "logger=csv", "callbacks.progress=null", "trainer.max_steps=3", "trainer.val_check_interval=3"]
    masked_lm = ["task=masked_language_modeling", "model=bert", "model.n_inner=48", f"model.init_from=hf:{root / 'bert'}"]
    classifier = [
        "task=classification",
        "model=gpt_classifier",
        "model.bias=true",
        "model.activation=gelu_tanh",
        f"model.init_from=hf:{root / 'gpt2'}",
    ]
    with caplog.at_level("INFO", logger="framework.run.pretrained"):
        train(compose_config([*common, *masked_lm], tmp_path / "mlm"))
        train(compose_config([*common, *classifier], tmp_path / "classifier"))
    messages = [
        record.getMessage() for record in caplog.records if "model.init_from=hf:" in record.getMessage() and "loaded" in record.getMessage()
    ]
    assert "loaded 34 tensors" in messages[0] and "new: none; not used: none" in messages[0]  # 5 embedding, 2 x 12 block, 5 head tensors
    assert "loaded 28 tensors" in messages[1] and "new: head.weight, head.bias; not used: lm_head.*" in messages[1]  # 2 + 2 x 12 + 2
    for run, directory in (("mlm", "bert"), ("classifier", "gpt2")):
        assert (tmp_path / run / "run" / "checkpoints" / "last.ckpt").exists()
        # the Hugging Face tokenizer files, converted, are the run's tokenizer.json
        saved = Tokenizer.from_file(str(tmp_path / run / "run" / "tokenizer.json"))
        assert tokenizer_hash(saved) == tokenizer_hash(read_hf_checkpoint(root / directory).tokenizer)
