"""The shipped harness tasks: deterministic files, items that are what they claim, chance levels,
the exact binomial test, and tasks found, refused or run offline through the harness itself."""

import hashlib
import json
import math
import os
import random
import re
import time
from collections import Counter

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from framework.errors import ConfigError, DataError, MissingInputError
from framework.harness.evaluation import HarnessSettings, binomial_p_value, find_tasks, run_tasks
from framework.harness.model import HarnessModel
from framework.harness.shipped import (
    CLEANING,
    CONTINUATION_CHARACTERS,
    ITEMS,
    MIN_DISTANCE,
    SHIPPED_TASKS,
    TINY_SHAKESPEARE_SHA256,
    VAL_FRACTION,
    WORD,
    build_tasks,
    held_out_texts,
)
from framework.models import GPT
from framework.tokenizer.char import train_char_tokenizer

TASKS = ["shakespeare_continuation", "shakespeare_cloze", "stdlib_continuation", "stdlib_cloze"]


@pytest.fixture(scope="module")
def texts(shakespeare_path):
    return held_out_texts(shakespeare_path)


@pytest.fixture(scope="module")
def built(texts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tasks")
    return folder, build_tasks(texts, folder)


def test_the_same_text_gives_the_same_files_byte_for_byte(texts, built, tmp_path):
    folder, manifest = built
    again = build_tasks(texts, tmp_path)
    assert list(manifest) == TASKS and again == manifest
    for name in TASKS:
        data = (folder / f"{name}.jsonl").read_bytes()
        assert data == (tmp_path / f"{name}.jsonl").read_bytes() and hashlib.sha256(data).hexdigest() == manifest[name]["sha256"]


def items(folder, name):
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


def test_continuation_items_hold_the_true_continuation_among_three_others(texts, built):
    folder, manifest = built
    for text in texts:
        rows = items(folder, f"{text.name}_continuation")
        assert len(rows) == ITEMS and manifest[f"{text.name}_continuation"]["chance"] == 0.25
        for row in rows:
            choices, context = row["choices"], row["context"]
            assert len(set(choices)) == 4 and all(len(choice) == CONTINUATION_CHARACTERS and "\n" not in choice for choice in choices)
            cut = text.val.index(context + choices[row["label"]])
            assert re.match(r"[A-Za-z]{2}", context[-2:]) and choices[row["label"]][:2].isalpha()  # cut inside a word
            for index, choice in enumerate(choices):
                if index != row["label"]:  # a distractor comes from elsewhere in the same text
                    assert any(
                        abs(place.start() - (cut + len(context))) >= MIN_DISTANCE for place in re.finditer(re.escape(choice), text.val)
                    )
        counts = Counter(row["label"] for row in rows)  # the answer's position: uniform, each about 125 of 500
        assert sorted(counts) == [0, 1, 2, 3] and all(abs(count - ITEMS / 4) < 4 * math.sqrt(ITEMS * 3 / 16) for count in counts.values())


def test_cloze_answers_end_a_phrase_and_occur_earlier_in_their_passage(texts, built):
    folder, manifest = built
    for text in texts:
        rows = items(folder, f"{text.name}_cloze")
        assert len(rows) == ITEMS
        for row in rows:
            target, context = row["target"], row["context"]
            assert re.fullmatch(WORD, target) and context.endswith((" ", "\t"))
            assert re.search(rf"(?<!\w){re.escape(target)}(?!\w)", context)
            start = text.val.index(context + target)
            after = text.val[start + len(context) + len(target) :]
            assert re.match(r"[^\w\n]*(\n|$)", after) or (text.phrase_ends and after[0] in ",.;:!?")
        entry = manifest[f"{text.name}_cloze"]
        most_frequent = re.search(r"always '(\w+)'", entry["chance_is"]).group(1)
        assert entry["chance"] == sum(row["target"] == most_frequent for row in rows) / ITEMS


def test_the_binomial_p_value_is_the_exact_upper_tail():
    assert binomial_p_value(10, 10, 0.5) == pytest.approx(1 / 1024)
    assert binomial_p_value(0, 10, 0.5) == pytest.approx(1.0)
    assert binomial_p_value(3, 5, 0.25) == pytest.approx(sum(math.comb(5, k) * 0.25**k * 0.75 ** (5 - k) for k in (3, 4, 5)))
    assert binomial_p_value(1, 500, 0.0) is None  # no test against a chance of 0


def test_shipped_names_every_task_the_harness_finds_offline(harness_settings, harness_cache):
    found = find_tasks(harness_settings(["shipped"]))
    assert found.names == list(SHIPPED_TASKS) == TASKS and sorted(found.task_dict["tasks"]) == sorted(TASKS)
    assert all(len(task.eval_docs) == ITEMS and task.get_config("num_fewshot") == 0 for task in found.task_dict["tasks"].values())
    again = find_tasks(harness_settings(["stdlib_cloze"]))  # the built folder is reused
    assert again.names == ["stdlib_cloze"] and len(list((harness_cache / "harness").iterdir())) == 1


def test_the_texts_are_cleaned_and_split_as_training_reads_them(project_root):
    for name, config in (("shakespeare", "tinyshakespeare"), ("stdlib", "stdlib")):
        data = OmegaConf.load(project_root / "conf" / "data" / f"{config}.yaml")
        assert list(data.cleaning) == CLEANING[name] and data.val_fraction == VAL_FRACTION
    assert OmegaConf.load(project_root / "conf" / "data" / "tinyshakespeare.yaml").source.sha256 == TINY_SHAKESPEARE_SHA256


def test_bad_harness_settings_are_refused_naming_the_key(harness_settings, tmp_path):
    with pytest.raises(ConfigError, match="unknown task.*hellaswagg.*shakespeare_continuation"):
        find_tasks(harness_settings(["shipped", "hellaswagg"]))
    with pytest.raises(ConfigError, match=r"harness.limit=0"):
        find_tasks(harness_settings(["shipped"], limit=0))
    with pytest.raises(MissingInputError, match=r"harness.shakespeare=<path to input.txt>"):
        find_tasks(HarnessSettings(tasks=["shipped"], shakespeare=str(tmp_path / "none.txt"), cache_dir=str(tmp_path)))
    with pytest.raises(MissingInputError, match="harness.include_path="):
        find_tasks(harness_settings(["mine"], include_path=str(tmp_path / "absent")))
    other = tmp_path / "other.txt"
    other.write_text("First Citizen:\n")
    with pytest.raises(DataError, match=r"harness.shakespeare=.*other.txt has sha256 .* not Tiny Shakespeare's"):
        find_tasks(harness_settings(["shipped"], shakespeare=str(other)))


def test_a_task_that_needs_a_download_fails_at_once_with_what_to_do(harness_settings, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "remote.yaml").write_text(
        "task: remote_task\ndataset_path: someone/a-dataset-on-the-hub\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{q}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: 0\nmetric_list:\n  - metric: acc\n'
    )
    started = time.monotonic()
    with pytest.raises(ConfigError, match="needs data from the Hugging Face Hub.*dataset_path: json"):
        find_tasks(harness_settings(["remote_task"], include_path=str(folder)))
    assert time.monotonic() - started < 30  # no network time-outs
    assert "HF_HUB_OFFLINE" not in os.environ  # offline only while the harness runs


def test_running_tasks_leaves_the_processs_random_generators_as_they_were(shakespeare_path, harness_settings):
    tokenizer = train_char_tokenizer(shakespeare_path.read_text()[:5000])
    model = HarnessModel(GPT(vocab_size=tokenizer.get_vocab_size(), block_size=64, n_layer=1, n_head=1, n_embd=8), tokenizer, 64)
    tasks = find_tasks(harness_settings(["shakespeare_continuation"]))
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    (figures,) = run_tasks(model, tasks, limit=8).values()
    assert figures["items"] == 8
    assert (
        random.getstate() == states[0] and (np.random.get_state()[1] == states[1]).all() and torch.equal(torch.get_rng_state(), states[2])
    )
