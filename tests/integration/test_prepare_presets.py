"""The filter presets on the text they are meant for: prose defaults keep prose, the code preset
keeps source code, and Gopher's quality rules (web prose) reject code."""

import json
import sysconfig
from pathlib import Path

import pytest

from framework.errors import DataError
from framework.prepare.pipeline import prepare

pytestmark = pytest.mark.slow

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SETTINGS = ["tokenizer=char", "executor.tasks=1", "executor.workers=1", "prepare/dedup=none"]


def kept_fraction(manifest: dict) -> float:
    """Documents written to both splits over documents read."""
    read = manifest["stages"][0]["steps"][0]["documents"]
    return (manifest["splits"]["train"]["documents"] + manifest["splits"]["val"]["documents"]) / read


def prepared(prepare_config, root: Path, overrides: list[str]) -> dict:
    folder = prepare(prepare_config([*overrides, *SETTINGS], root)).folder
    return json.loads((folder / "manifest.json").read_text())


def test_prose_defaults_keep_shakespeare_and_sst2(shakespeare_path, shared_data, prepare_config, tmp_path):
    plays = prepared(prepare_config, tmp_path / "plays", [f"input.path={shakespeare_path}", "input.txt_documents=paragraphs"])
    sentences = [line.split("\t")[0] for line in (shared_data / "sst2" / "train.tsv").read_text().splitlines()[1:]]
    (tmp_path / "sst2.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in sentences))
    reviews = prepared(prepare_config, tmp_path / "reviews", [f"input.path={tmp_path / 'sst2.jsonl'}"])
    assert kept_fraction(plays) >= 0.9 and kept_fraction(reviews) >= 0.9


def test_the_code_preset_keeps_the_standard_library_and_gopher_quality_rejects_it(prepare_config, tmp_path):
    (tmp_path / "code").mkdir()
    files = sorted(STDLIB.glob("*.py"))[:60]
    for path in files:
        (tmp_path / "code" / f"{path.stem}.txt").write_text(path.read_text(encoding="utf-8", errors="replace"))
    code = prepared(
        prepare_config,
        tmp_path / "preset",
        [f"input.path={tmp_path / 'code' / '*.txt'}", "prepare/filters=code", "output.val_fraction=0.2"],
    )
    assert kept_fraction(code) >= 0.9
    with pytest.raises(DataError, match=rf"the last ones by FILTER: Gopher Quality \({len(files)} of {len(files)} dropped\)"):
        prepared(
            prepare_config, tmp_path / "quality", [f"input.path={tmp_path / 'code' / '*.txt'}", "prepare/filters=[clean,gopher_quality]"]
        )


NOT_ENGLISH = [
    "Am nächsten Morgen gingen wir früh zum Bahnhof, weil der Zug nach Berlin schon um sieben Uhr abfahren sollte.",
    "Die Kinder spielten den ganzen Nachmittag im Garten, bis es dunkel wurde und die Mutter sie zum Essen rief.",
    "Le lendemain matin, nous sommes partis de bonne heure pour voir la mer avant que la foule n'arrive sur la plage.",
    "Elle a lu le livre en une seule nuit, puis elle l'a prêté à son frère qui ne l'a jamais rendu.",
    "Cuando llegamos al pueblo, la plaza estaba llena de gente que esperaba el comienzo de la fiesta mayor.",
    "Mi abuela cocinaba pan todos los domingos y el olor llenaba la casa entera desde muy temprano.",
]


def test_the_language_filter_removes_exactly_the_documents_in_other_languages(shakespeare_path, prepare_config, tmp_path):
    paragraphs = [text for text in shakespeare_path.read_text().split("\n\n") if len(text) >= 200][:40]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in paragraphs + NOT_ENGLISH))
    manifest = prepared(
        prepare_config,
        tmp_path / "out",
        [f"input.path={tmp_path / 'mixed.jsonl'}", "prepare/filters=[clean,language]", "output.val_fraction=0.1"],
    )
    language = next(step for step in manifest["stages"][0]["steps"] if step["step"] == "🔻 - FILTER: language")
    assert (language["total"], language["dropped_other_language"]) == (len(paragraphs) + len(NOT_ENGLISH), len(NOT_ENGLISH))
    assert manifest["splits"]["train"]["documents"] + manifest["splits"]["val"]["documents"] == len(paragraphs)
