"""Progress inside a running stage: tasks done, and the time left at the rate so far."""

import json
import time

import pytest
from datatrove.pipeline.base import PipelineStep
from omegaconf import OmegaConf

from framework.prepare.report import progress_line
from framework.prepare.stages import Chain, PlannedStage, Progress, Stage, run_stages


class Pause(PipelineStep):
    name = "pause"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        time.sleep(0.3)
        return iter(())


@pytest.mark.parametrize("finished_before", [0, 1])
def test_a_running_stage_reports_each_task_this_run_finishes(tmp_path, finished_before):
    chain = Chain(tmp_path, "0" * 64, default_tasks=4)
    planned = chain.add(Stage("pause", {}, lambda output, folders: [Pause()]))
    (planned.logs / "completions").mkdir(parents=True)
    for rank in range(finished_before):  # an interrupted earlier run finished these
        (planned.logs / "completions" / f"{rank:05d}").touch()
    reports = []
    config = OmegaConf.create({"kind": "local", "workers": 1})
    run_stages(config, [(planned, {})], progress=lambda index, state: reports.append((index, state)), interval=0.02)
    todo = 4 - finished_before
    assert [state.done for _, state in reports] == list(range(1, todo))  # the last task ends the stage
    assert [state.ranks for _, state in reports] == [list(range(finished_before, finished_before + done)) for done in range(1, todo)]
    assert all(index == 0 and state.todo == todo for index, state in reports)


def test_the_progress_line_gives_tasks_rates_and_time_left(tmp_path):
    planned = PlannedStage(Stage("filter", {}, lambda output, folders: []), "0" * 64, tmp_path, tmp_path / "output", 16)
    (tmp_path / "logs" / "stats").mkdir(parents=True)
    for rank in (3, 5, 8):
        stats = [{"name": "📖 - READER: 🐿 jsonl files", "stats": {"documents": {"total": 1000}, "doc_len": {"total": 4_000_000}}}]
        (tmp_path / "logs" / "stats" / f"{rank:05d}.json").write_text(json.dumps(stats))
    (tmp_path / "logs" / "stats" / "00009.json").write_text('[{"name": ')  # a task still writing its stats: not read
    state = Progress(planned, ranks=[3, 5, 8], todo=12, seconds=40.0)
    assert state.eta == 120.0
    assert progress_line(1, 9, state) == "[2/9] filter: 3/12 tasks in 40 s, 75 documents/s, 0.3 M characters/s, ETA 2 min 00 s"
    assert progress_line(1, 9, Progress(planned, ranks=[], todo=12, seconds=5.0)) == "[2/9] filter: 0/12 tasks in 5 s, ETA unknown"


def test_a_finished_stage_counts_the_warnings_of_its_tasks_that_had_input(tmp_path):
    from framework.prepare.report import task_warnings

    line = "2026-12-07 16:11:47.139 | {level: <8} | datatrove.pipeline.filters:run:12 - {message}\n"
    (tmp_path / "task_00000.log").write_text(
        line.format(level="INFO", message="Launching pipeline for rank=0")
        + line.format(level="WARNING", message="a document without text")
        + line.format(level="WARNING", message="another")
    )
    (tmp_path / "task_00001.log").write_text(  # a task that got no file: its warnings say nothing about the data
        line.format(level="WARNING", message="No files found on /data/output for rank=1")
        + line.format(level="WARNING", message="No data saved.")
    )
    (tmp_path / "task_00002.log").write_text(line.format(level="ERROR", message="a failure is raised, not counted here"))
    assert task_warnings(tmp_path) == 2
