"""The shipped harness tasks: deterministic files, items that are what they claim, chance levels,
the exact binomial test, and tasks found, refused or run offline through the harness itself."""

import hashlib
import json
import math
import re
import time

import pytest

from framework.errors import ConfigError, MissingInputError
from framework.harness.evaluation import HarnessSettings, binomial_p_value, find_tasks
from framework.harness.shipped import (
    CONTINUATION_CHARACTERS,
    ITEMS,
    MIN_DISTANCE,
    RECENT_CHARACTERS,
    build_tasks,
    common_words,
    held_out_texts,
)

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
        assert sorted(row["label"] for row in rows)[ITEMS // 2] in (1, 2)  # answers spread over the positions


def test_cloze_answers_occur_just_before_and_are_not_common_words(texts, built):
    folder, manifest = built
    for text in texts:
        rows, common = items(folder, f"{text.name}_cloze"), set(common_words(text.train))
        assert len(rows) == ITEMS
        for row in rows:
            target, context = row["target"], row["context"]
            assert target not in common and len(target) >= 3 and context.endswith((" ", "\t"))
            assert re.search(rf"(?<!\w){re.escape(target)}(?!\w)", context[-RECENT_CHARACTERS:])
            assert context + target in text.val
        entry = manifest[f"{text.name}_cloze"]
        most_frequent = re.search(r"always '(\w+)'", entry["chance_is"]).group(1)
        assert entry["chance"] == sum(row["target"] == most_frequent for row in rows) / ITEMS


def test_the_binomial_p_value_is_the_exact_upper_tail():
    assert binomial_p_value(10, 10, 0.5) == pytest.approx(1 / 1024)
    assert binomial_p_value(0, 10, 0.5) == pytest.approx(1.0)
    assert binomial_p_value(3, 5, 0.25) == pytest.approx(sum(math.comb(5, k) * 0.25**k * 0.75 ** (5 - k) for k in (3, 4, 5)))
    assert binomial_p_value(1, 500, 0.0) == 0.0


def settings(shakespeare_path, tmp_path, tasks, **others):
    return HarnessSettings(tasks=tasks, shakespeare=str(shakespeare_path), cache_dir=str(tmp_path), **others)


def test_shipped_names_every_task_the_harness_finds_offline(shakespeare_path, tmp_path):
    found = find_tasks(settings(shakespeare_path, tmp_path, ["shipped"]))
    assert found.names == TASKS and all(name in found.manager.all_tasks for name in TASKS)
    again = find_tasks(settings(shakespeare_path, tmp_path, ["stdlib_cloze"]))  # the built folder is reused
    assert again.names == ["stdlib_cloze"] and len(list((tmp_path / "harness").iterdir())) == 1


def test_bad_harness_settings_are_refused_naming_the_key(shakespeare_path, tmp_path):
    with pytest.raises(ConfigError, match="unknown task.*hellaswagg.*shakespeare_continuation"):
        find_tasks(settings(shakespeare_path, tmp_path, ["shipped", "hellaswagg"]))
    with pytest.raises(ConfigError, match=r"harness.limit=0"):
        find_tasks(settings(shakespeare_path, tmp_path, ["shipped"], limit=0))
    with pytest.raises(MissingInputError, match=r"harness.shakespeare=<path to input.txt>"):
        find_tasks(HarnessSettings(tasks=["shipped"], shakespeare=str(tmp_path / "none.txt"), cache_dir=str(tmp_path)))
    with pytest.raises(MissingInputError, match="harness.include_path="):
        find_tasks(settings(shakespeare_path, tmp_path, ["mine"], include_path=str(tmp_path / "absent")))


def test_a_task_that_needs_a_download_fails_at_once_with_what_to_do(shakespeare_path, tmp_path):
    from framework.harness.evaluation import run_tasks
    from framework.harness.model import HarnessModel
    from framework.models import GPT
    from framework.tokenizer.char import train_char_tokenizer

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "remote.yaml").write_text(
        "task: remote_task\ndataset_path: someone/a-dataset-on-the-hub\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{q}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: 0\nmetric_list:\n  - metric: acc\n'
    )
    tokenizer = train_char_tokenizer("abc \n")
    model = HarnessModel(GPT(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8), tokenizer, 8)
    tasks = find_tasks(settings(shakespeare_path, tmp_path, ["remote_task"], include_path=str(folder)))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="needs data from the Hugging Face Hub.*dataset_path: json"):
        run_tasks(model, tasks)
    assert time.monotonic() - started < 30  # no network time-outs
