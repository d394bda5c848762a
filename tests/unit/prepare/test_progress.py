"""Progress inside a running stage: tasks done, and the time left at the rate so far."""

import json
import time

from datatrove.pipeline.base import PipelineStep
from omegaconf import OmegaConf

from framework.prepare.report import progress_line
from framework.prepare.stages import Chain, PlannedStage, Progress, Stage, run_stages


class Pause(PipelineStep):
    name = "pause"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        time.sleep(0.3)
        return iter(())


def test_a_running_stage_reports_each_finished_task(tmp_path):
    chain = Chain(tmp_path, "0" * 64, default_tasks=4)
    planned = chain.add(Stage("pause", {}, lambda output, folders: [Pause()]))
    reports = []
    config = OmegaConf.create({"kind": "local", "workers": 1})
    run_stages(config, [(planned, {})], progress=lambda index, state: reports.append((index, state)), interval=0.02)
    done = [state.done for _, state in reports]
    assert done and done == sorted(set(done)) and set(done) <= {1, 2, 3}  # the fourth ends the stage
    assert all(index == 0 and state.todo == 4 and state.planned is planned for index, state in reports)


def test_the_progress_line_gives_tasks_and_time_left(tmp_path):
    planned = PlannedStage(Stage("filter", {}, lambda output, folders: []), "0" * 64, tmp_path, tmp_path / "output", 16)
    state = Progress(planned, done=3, todo=12, seconds=40.0)
    assert state.eta == 120.0
    assert progress_line(1, 9, state) == "[2/9] filter: 3/12 tasks in 40 s, ETA 2 min 00 s"
    (tmp_path / "logs" / "stats").mkdir(parents=True)
    stats = [{"name": "📖 - READER: 🐿 jsonl files", "stats": {"documents": {"total": 2000}, "doc_len": {"total": 8_000_000}}}]
    (tmp_path / "logs" / "stats" / "00000.json").write_text(json.dumps(stats))
    assert progress_line(1, 9, state) == "[2/9] filter: 3/12 tasks in 40 s, 50 documents/s, 0.2 M characters/s, ETA 2 min 00 s"
