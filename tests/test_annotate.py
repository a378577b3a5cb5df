"""`relaxml annotate`: a model over every task of a project that lacks its prediction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml._datadir.sqlite import FILENAME
from relaxml._training.versions import VersionStore
from relaxml.cli import main
from relaxml.testing import FakeLabelStudio

from .conftest import wait_for
from .support.model_files import CONFIG, PRELUDE

MODELS = (
    PRELUDE
    + '''
class Picky(Good):
    """Raises on a call with a task whose text is "bad"; answers "maybe" to "odd"; names
    another version for "other", and both versions for "both"."""
    def predict(self, tasks, context):
        if any(t.data["text"] == "bad" for t in tasks):
            raise ValueError("cannot read this one")
        return [
            choice("positive", model_version="x-2") if t.data["text"] == "other"
            else [choice("positive"), choice("negative", model_version="x-2")]
            if t.data["text"] == "both"
            else choice("maybe" if t.data["text"] == "odd" else "positive")
            for t in tasks
        ]

class Word(LabelStudioModel):
    """Predicts the word it was trained to (saved in word.txt), "positive" untrained."""
    model_version = "w-1"
    def __init__(self):
        self.word = "positive"
    def predict(self, tasks, context):
        return [choice(self.word) for task in tasks]
    def save(self, path):
        (path / "word.txt").write_text(self.word)
    def load(self, path):
        self.word = (path / "word.txt").read_text()
'''
)


@pytest.fixture
def fake() -> Any:
    with FakeLabelStudio() as fake:
        yield fake


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def project(fake: FakeLabelStudio, texts: list[str], first_id: int = 101) -> int:
    project_id = fake.add_project(CONFIG)
    for number, text in enumerate(texts):
        fake.add_task(project_id, {"text": text}, id=first_id + number)
    return project_id


def annotate(fake: FakeLabelStudio, target: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["annotate", target, *args], env=fake.env)


def test_predicts_what_lacks_the_version_and_a_second_run_stores_none(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(10)])
    for task_id in (101, 102, 103):  # already predicted by this version
        fake.store_prediction({"task": task_id, "result": [], "model_version": "a-1"})
    fake.store_prediction({"task": 104, "result": [], "model_version": "old"})
    target = f"{models}:Good"
    result = annotate(fake, target, "--project", str(project_id), "--import-size", "4")
    assert result.exit_code == 0, result.output
    assert "7 predicted, 3 skipped (already predicted), 0 failed" in result.output
    assert "tasks/s" in result.output
    assert fake.imports == [4, 3]  # bulk imports of at most --import-size
    versions = {t: [p["model_version"] for p in fake.predictions_of(t)] for t in fake.tasks}
    assert all(v.count("a-1") == 1 for v in versions.values()), versions
    assert versions[104] == ["old", "a-1"]
    assert fake.predictions_of(105)[0]["result"][0]["value"] == {"choices": ["positive"]}

    again = annotate(fake, target, "--project", str(project_id))
    assert again.exit_code == 0, again.output
    assert "0 predicted, 10 skipped" in again.output
    assert fake.imports == [4, 3]


def test_a_failing_task_fails_alone_and_the_rest_is_stored(fake, models):
    texts = ["fine", "bad", "fine", "odd", "other", "both", "fine"]
    project_id = project(fake, texts)
    result = annotate(fake, f"{models}:Picky", "--project", str(project_id))
    assert result.exit_code == 1
    assert "task 102: predict raised ValueError: cannot read this one" in result.output
    assert "task 104: does not fit the label config" in result.output
    assert "task 105: its predictions name model_version x-2, not the model's a-1" in result.output
    assert "4 predicted, 0 skipped (already predicted), 3 failed" in result.output
    assert fake.predictions_by_task() == {101: 1, 103: 1, 106: 2, 107: 1}

    again = annotate(fake, f"{models}:Picky", "--project", str(project_id))
    assert "0 predicted, 4 skipped (already predicted), 3 failed" in again.output
    assert fake.predictions_by_task() == {101: 1, 103: 1, 106: 2, 107: 1}


def test_an_import_whose_answer_is_lost_is_not_stored_twice(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(6)])
    fake.fail(f"/api/projects/{project_id}/import/predictions", 502, times=1, lost=True)
    result = annotate(fake, f"{models}:Good", "--project", str(project_id))
    assert result.exit_code == 0, result.output
    assert fake.predictions_by_task() == dict.fromkeys(range(101, 107), 1)
    assert fake.imports == [6]  # stored by the first import: never sent again


def test_an_import_that_fails_is_sent_again_and_a_refused_one_task_by_task(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(3)])
    path = f"/api/projects/{project_id}/import/predictions"
    fake.fail(path, 503, times=1)
    fake.fail(path, 400, times=1)
    result = annotate(fake, f"{models}:Good", "--project", str(project_id))
    assert result.exit_code == 0, result.output
    assert fake.predictions_by_task() == {101: 1, 102: 1, 103: 1}
    assert fake.imports == [1, 1, 1]


def test_bad_invocations_are_clear(fake, models):
    target = f"{models}:Good"
    result = annotate(fake, target, "--project", "99")
    assert result.exit_code == 1
    assert "Label Studio" in result.output
    assert "Traceback" not in result.output
    result = annotate(fake, target, "--project", "1", "--engine", "spark")
    assert result.exit_code == 2
    assert "'local'" in result.output
    assert "'ray'" in result.output
    result = CliRunner().invoke(main, ["annotate", target, "--project", "1"], env={
        "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""})  # fmt: skip
    assert result.exit_code == 2
    assert "LABEL_STUDIO_URL" in result.output


def test_with_a_data_dir_its_current_version_predicts(fake, models, tmp_path):
    project_id = project(fake, ["a", "b"])
    data_dir = tmp_path / "data"
    artifacts = data_dir / "versions" / "w-2"
    artifacts.mkdir(parents=True)
    (artifacts / "word.txt").write_text("negative")
    store = VersionStore(data_dir / FILENAME)
    store.record("w-2", path=artifacts)
    store.close()
    args = ["--project", str(project_id), "--data-dir", str(data_dir)]
    result = annotate(fake, f"{models}:Word", *args)
    assert result.exit_code == 0, result.output
    assert "(model version w-2)" in result.output
    stored = [(p["model_version"], p["result"][0]["value"]) for p in fake.predictions]
    assert stored == [("w-2", {"choices": ["negative"]})] * 2

    result = annotate(fake, f"{models}:Word", "--project", "1", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "holds no relaxml database" in result.output


def test_resumes_after_a_kill_without_duplicates(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(40)])
    command = [sys.executable, "-m", "relaxml", "annotate", f"{models}:Good",
               "--project", str(project_id), "--import-size", "4"]  # fmt: skip
    env = {**os.environ, **fake.env, "RELAXML_TEST_SLEEP": "0.2"}
    run = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(fake.imports) >= 3, timeout=60)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
        assert run.stderr is not None
        run.stderr.close()
    before = fake.predictions_by_task()
    assert 12 <= len(before) < 40
    assert set(before.values()) == {1}

    env["RELAXML_TEST_SLEEP"] = "0"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} skipped (already predicted)" in done.stderr
    assert "Annotating" in done.stderr
    assert fake.predictions_by_task() == dict.fromkeys(range(101, 141), 1)


def test_what_is_stored_is_read_page_by_page_never_all_at_once(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(250)])
    for task_id in range(101, 331):  # 230 predictions of the version: more than a page
        fake.store_prediction({"task": task_id, "result": [], "model_version": "a-1"})
    result = annotate(fake, f"{models}:Good", "--project", str(project_id))
    assert result.exit_code == 0, result.output
    assert "20 predicted, 230 skipped (already predicted), 0 failed" in result.output
    pages = [
        (query["page"], query["page_size"], query.get("fields"))
        for method, path, query in fake.queries
        if path == "/api/tasks" and query.get("page_size") != "1"
    ]
    assert pages == [("1", "100", "all"), ("2", "100", "all"), ("3", "100", "all")]
    assert not [q for q in fake.queries if q[1] == "/api/predictions/"]  # no unpaged read
    assert fake.predictions_by_task() == dict.fromkeys(range(101, 351), 1)


def test_after_a_lost_answer_only_the_tasks_of_that_import_are_asked_about(fake, models):
    project_id = project(fake, [f"text {n}" for n in range(6)])
    for task_id in range(200, 400):  # another project's predictions are never read
        fake.add_task(fake.add_project(CONFIG), {"text": "x"}, id=task_id)
        fake.store_prediction({"task": task_id, "result": [], "model_version": "a-1"})
    fake.fail(f"/api/projects/{project_id}/import/predictions", 502, times=1, lost=True)
    args = ("--project", str(project_id), "--import-size", "3")
    result = annotate(fake, f"{models}:Good", *args)
    assert result.exit_code == 0, result.output
    asked = [q[2] for q in fake.queries if q[1] == "/api/predictions/"]
    assert asked == [{"task": str(t), "project": str(project_id)} for t in (101, 102, 103)]
    assert fake.predictions_by_task() == dict.fromkeys(range(101, 107), 1) | dict.fromkeys(
        range(200, 400), 1
    )
