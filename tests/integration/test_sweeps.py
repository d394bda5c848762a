"""Hydra multirun sweeps, launchers, Optuna, W&B grouping and offline comparison (slow)."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from framework.run.sweep import threads_per_job

pytestmark = pytest.mark.slow


def tiny(shakespeare_path, tmp_path):
    return [
        "data=tinyshakespeare",
        f"data.path={shakespeare_path}",
        "tokenizer=char",
        "data.block_size=32",
        "data.batch_size=8",
        "model.n_head=2",
        "model.n_embd=32",
        "trainer.max_steps=10",
        "trainer.val_check_interval=5",
        "trainer.limit_val_batches=2",
        "scheduler.warmup_steps=2",
        "callbacks.progress=null",
        "sample.max_new_tokens=5",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


def records(sweep_dir: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sorted(sweep_dir.glob("*/run.json"))}


def wandb_summary(run_module, run_dir: Path) -> dict:
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    inspected = run_module("wandb", "leet", "inspect", "--summary", "--json", str(wandb_run), cwd=run_dir)
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)


def wandb_records(run_module, run_dir: Path, kind: str) -> list[dict]:
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    inspected = run_module("wandb", "leet", "inspect", "--json", str(wandb_run), cwd=run_dir)
    return [record[kind] for record in map(json.loads, inspected.stdout.splitlines()) if record.get("type") == kind]


@pytest.fixture(scope="module")
def grid_sweep(shakespeare_path, tmp_path_factory, run_module):
    """A 2 x 2 grid sweep tracked in W&B (offline): its directory, the folder it ran in, and the result."""
    tmp_path = tmp_path_factory.mktemp("grid")
    sweep_dir = tmp_path / "sweep"
    result = run_module(
        "framework.train",
        "-m",
        "optimizer.lr=1e-3,3e-3",
        "model.n_layer=1,2",
        *tiny(shakespeare_path, tmp_path),
        "logger=wandb",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir, tmp_path, result


def test_grid_sweep_names_jobs_tracks_each_in_wandb_and_compares(grid_sweep, run_module):
    sweep_dir, tmp_path, _ = grid_sweep
    jobs = records(sweep_dir)
    assert list(jobs) == [
        "0_optimizer.lr=0.001,model.n_layer=1",
        "1_optimizer.lr=0.001,model.n_layer=2",
        "2_optimizer.lr=0.003,model.n_layer=1",
        "3_optimizer.lr=0.003,model.n_layer=2",
    ]
    run_ids = set()
    for name, record in jobs.items():
        assert record["status"] == "finished" and record["objective"]["val/loss"] <= record["final"]["metrics"]["val/loss"]
        (wandb_run,) = wandb_records(run_module, sweep_dir / name, "run")
        run_ids.add(wandb_run["run_id"])
        assert wandb_run["run_group"] == "sweep" and wandb_run["display_name"] == name.split("_", 1)[1]
        assert wandb_run["job_type"] == "train"
        summary = wandb_summary(run_module, sweep_dir / name)
        assert summary["config"]["optimizer"]["lr"] == record["config"]["optimizer"]["lr"]
        assert summary["summary"]["val/loss"] == {
            "min": pytest.approx(record["objective"]["val/loss"]),
            "last": pytest.approx(record["final"]["metrics"]["val/loss"]),
        }
        history = wandb_records(run_module, sweep_dir / name, "history")
        assert history[0]["item"]["_step"] == 0 and history[0]["item"]["trainer/global_step"] == 5
        (table,) = (sweep_dir / name / "wandb").glob("offline-run-*/files/media/table/samples_*.table.json")
        ((step, prompt, sample),) = json.loads(table.read_text())["data"]  # the final sample, as a W&B table
        assert step == 10 and prompt == "\n" and sample.startswith("\n") and len(sample) > 1
        assert (sweep_dir / name / "samples.txt").read_text() == f"=== step 10, prompt {prompt!r}\n{sample}\n"
    assert len(run_ids) == 4
    assert {job["config"]["optimizer"]["lr"] for job in jobs.values()} == {0.001, 0.003}

    compared = run_module("framework.compare", str(sweep_dir), "--csv", "table.csv", "--plot", "curves.png", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    header, *rows = list(csv.reader((tmp_path / "table.csv").open()))
    assert len(rows) == 4
    assert header[:3] == ["run", "model.n_layer", "optimizer.lr"] and header[3] == "final val/loss"
    final_losses = [float(row[3]) for row in rows]
    assert final_losses == sorted(final_losses)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "curves.png").stat().st_size > 10_000


def test_a_sweep_ends_with_a_table_of_its_jobs_the_best_one_and_the_next_command(grid_sweep):
    sweep_dir, _, result = grid_sweep
    jobs = records(sweep_dir)
    objectives = {name.split("_", 1)[0]: job["objective"]["val/loss"] for name, job in jobs.items()}
    best = min(objectives, key=objectives.get)
    summary = (sweep_dir / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    assert table[0] == "| job | optimizer.lr | model.n_layer | val/loss | status |"
    expected = [("0", "0.001", "1"), ("1", "0.001", "2"), ("2", "0.003", "1"), ("3", "0.003", "2")]
    assert table[1:] == [f"| {job} | {lr} | {layers} | {objectives[job]:.4f} | finished |" for job, lr, layers in expected]
    assert f"Best: job {best} (optimizer.lr={expected[int(best)][1]}, model.n_layer={expected[int(best)][2]})" in summary
    assert "python -m framework.compare sweep --html report.html" in summary  # relative to where the sweep ran
    printed = result.stdout.split("Sweep sweep: 4 jobs")[1]
    assert f"Best: job {best}, val/loss {objectives[best]:.4f}" in printed and "Next: python -m framework.compare" in printed


def test_compare_fits_the_terminal_and_writes_a_page_a_browser_shows_offline(grid_sweep, run_module):
    sweep_dir, tmp_path, _ = grid_sweep
    compact = run_module("framework.compare", str(sweep_dir), cwd=tmp_path, env={"COLUMNS": "80"})
    assert compact.returncode == 0, compact.stderr
    lines = compact.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "more columns: --wide, --csv or --html" in compact.stdout
    body = [line.split("│")[1:-1] for line in lines if line.startswith("│")]  # one line per run: no cell wraps
    assert sorted(cells[0].strip() for cells in body) == ["0", "1", "2", "3"]
    header = " ".join(line for line in lines if line.startswith("┃"))
    assert all(name in header for name in ("job", "model.n_layer", "optimizer.lr", "final val/loss", "best val/loss", "wall s"))
    page = tmp_path / "report.html"
    written = run_module("framework.compare", str(sweep_dir), "--html", str(page), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    html = page.read_text()
    assert "<script" not in html and "http" not in html.split("<body>")[1]  # nothing to fetch

    driver_path, browser_path = shutil.which("chromedriver"), shutil.which("chromium")
    if not (driver_path and browser_path):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(page.as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert sorted(row.find_elements(By.TAG_NAME, "td")[0].text for row in rows) == sorted(records(sweep_dir))
        assert browser.execute_script("return document.images.length === 1 && document.images[0].naturalWidth > 1000")
        assert browser.get_log("browser") == []  # no console errors or warnings
        requests = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        assert requests and all(url == page.as_uri() or url.startswith("data:") for url in requests)
    finally:
        browser.quit()


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_run_every_job(shakespeare_path, tmp_path, launcher, run_module):
    sweep_dir = tmp_path / launcher
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    result = run_module(
        "framework.train",
        "-m",
        f"hydra/launcher={launcher}",
        *extra,
        "optimizer.lr=1e-3,3e-3",
        *tiny(shakespeare_path, tmp_path),
        "logger=csv",
        "model.n_layer=1",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = records(sweep_dir)
    assert list(jobs) == ["0_optimizer.lr=0.001", "1_optimizer.lr=0.003"]
    assert all(job["status"] == "finished" for job in jobs.values())
    if launcher == "joblib":  # 2 parallel trials share the cores instead of each taking all of them
        assert {job["torch_threads"] for job in jobs.values()} == {threads_per_job(2)}


def test_optuna_sweep_completes_and_reports_the_best_trial(shakespeare_path, tmp_path, run_module):
    sweep_dir = tmp_path / "optuna"
    result = run_module(
        "framework.train",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        *[item for item in tiny(shakespeare_path, tmp_path) if not item.startswith("model.n_embd=")],
        "model.n_layer=choice(1,2)",
        "model.n_embd=choice(32,64)",
        "logger=csv",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = records(sweep_dir)
    assert len(trials) == 3 and all(name.split("_", 1)[1].startswith("optimizer.lr=") for name in trials)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(trial["objective"]["val/loss"] for trial in trials.values()))
    assert set(best["best_params"]) == {"optimizer.lr", "model.n_layer", "model.n_embd", "model.dropout"}


def test_optuna_study_in_sqlite_continues_after_an_interruption(shakespeare_path, tmp_path, run_module):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for attempt in ("first", "second"):
        result = run_module(
            "framework.train",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweeper.storage={storage}",
            *tiny(shakespeare_path, tmp_path),
            "logger=csv",
            f"hydra.sweep.dir={tmp_path / attempt}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="lm_search", storage=storage)
    assert [trial.number for trial in study.trials] == [0, 1, 2, 3]
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)


def test_a_diverging_trial_fails_and_the_sweep_continues(shakespeare_path, tmp_path, run_module):
    sweep_dir = tmp_path / "sweep"
    result = run_module(
        "framework.train",
        "-m",
        "optimizer.lr=1e9,1e-3",
        "optimizer.eps=1e-30",
        *tiny(shakespeare_path, tmp_path),
        "logger=csv",
        "model.n_layer=1",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = records(sweep_dir)
    assert [job["status"] for job in jobs.values()] == ["failed", "finished"]
    assert "became nan at optimizer step" in jobs["0_optimizer.lr=1000000000.0"]["error"]
    assert "Trial failed" in result.stdout + result.stderr
