"""`relaxml predict` and `relaxml check`: a model over a tasks file with no Label Studio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml.cli import main

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "sentiment"
TARGET = f"{SENTIMENT / 'model.py'}:NaiveBayesSentiment"
CONFIG = SENTIMENT / "label_config.xml"

MODELS = '''
from relaxml import LabelStudioModel, Prediction

class Batches(LabelStudioModel):
    """Predicts a choice naming the task's id and the size of the call it came in."""
    model_version = "b-1"
    max_batch_size = 2
    def setup(self, project):
        self.config = project.label_config
    def predict(self, tasks, context):
        assert context.label_config == self.config
        return [
            Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                "value": {"choices": ["positive"]}}], score=len(tasks) / 10)
            for task in tasks
        ]

class Wrong(LabelStudioModel):
    """Predicts a label the config does not have for odd ids, nothing for the rest."""
    def predict(self, tasks, context):
        return [
            Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                "value": {"choices": ["maybe"]}}]) if t.id % 2 else None
            for t in tasks
        ]

class OutOfMemoryError(RuntimeError):
    """Looks like torch's, without torch."""

OutOfMemoryError.__module__ = "torch.cuda"

class Greedy(LabelStudioModel):
    """Out of memory above two tasks, and on a task whose text is huge, even alone."""
    max_batch_size = 8
    def predict(self, tasks, context):
        if len(tasks) > 2 or any(t.data["text"] == "huge" for t in tasks):
            raise OutOfMemoryError("CUDA out of memory")
        return [
            Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                "value": {"choices": ["positive"]}}], score=len(tasks) / 10)
            for task in tasks
        ]

class Raises(LabelStudioModel):
    """Raises on a call holding a task whose text is "bad"; the score says the call's size."""
    max_batch_size = 8
    def predict(self, tasks, context):
        if any(t.data["text"] == "bad" for t in tasks):
            raise ValueError("cannot read this one")
        return [
            Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                "value": {"choices": ["positive"]}}], score=len(tasks) / 10)
            for task in tasks
        ]

class Later(LabelStudioModel):
    """An async predict: each prediction names the event loop and the size of its call."""
    async def predict(self, tasks, context):
        import asyncio
        loop = str(id(asyncio.get_running_loop()))
        return [
            Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                "value": {"choices": [loop, str(len(tasks))]}}])
            for task in tasks
        ]
'''


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "offline_models.py"
    path.write_text(MODELS)
    return path


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_predict_writes_label_studio_s_import_format(tmp_path):
    out = tmp_path / "out.json"
    result = run("predict", TARGET, "--tasks", SENTIMENT / "tasks.json", "--config", CONFIG,
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    tasks = json.loads((SENTIMENT / "tasks.json").read_text())
    written = json.loads(out.read_text())
    assert [t["data"] for t in written] == [t["data"] for t in tasks]
    for task in written:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "nb-0"
        assert prediction["result"][0]["value"]["choices"][0] in ("positive", "negative")
        assert 0 <= prediction["score"] <= 1
    assert f"6 predictions for 6 tasks written to {out}" in result.output
    checked = run("check", out, "--config", CONFIG)
    assert checked.exit_code == 0, checked.output
    assert "6 of 6 predictions fit the label config" in checked.output


def test_chunks_follow_max_batch_size_and_setup_sees_the_config(models, tmp_path):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"text": f"t{i}"} for i in range(5)]))  # plain data objects
    out = tmp_path / "out.json"
    result = run("predict", f"{models}:Batches", "--tasks", tasks, "--config", CONFIG,
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = [t["predictions"][0]["score"] for t in json.loads(out.read_text())]
    assert scores == [0.2, 0.2, 0.2, 0.2, 0.1]  # calls of 2, 2 and 1 tasks


def test_problems_are_listed_and_exit_1_but_the_file_is_written(models, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(json.dumps({"id": i, "data": {"text": "x"}}) for i in (1, 2, 3)))
    out = tmp_path / "out.json"
    result = run("predict", f"{models}:Wrong", "--tasks", tasks, "--config", CONFIG, "--out", out)
    assert result.exit_code == 1
    assert "task 1: result[0]:" in result.output
    assert "maybe" in result.output
    assert "task 3: result[0]:" in result.output
    assert "task 2" not in result.output
    written = json.loads(out.read_text())
    assert [len(t["predictions"]) for t in written] == [1, 0, 1]
    checked = run("check", out, "--config", CONFIG)
    assert checked.exit_code == 1
    assert "task 1, prediction 1: result[0]:" in checked.output
    assert "0 of 2 predictions fit the label config" in checked.output


def test_an_async_model_runs_every_chunk_on_one_loop(models, tmp_path):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"data": {"text": str(i)}} for i in range(70)]))
    result = run("predict", f"{models}:Later", "--tasks", tasks, "--out", tmp_path / "o.json")
    assert result.exit_code == 0, result.output
    assert "70 predictions for 70 tasks" in result.output
    assert "not checked: pass --config" in result.output
    written = json.loads((tmp_path / "o.json").read_text())
    choices = [t["predictions"][0]["result"][0]["value"]["choices"] for t in written]
    assert len({loop for loop, _ in choices}) == 1
    assert [int(size) for _, size in choices] == [32] * 64 + [6] * 6


def test_a_chunk_out_of_memory_is_split_and_a_task_out_of_memory_alone_is_listed(models, tmp_path):
    tasks = tmp_path / "tasks.json"
    texts = ["a", "b", "huge", "d", "e"]
    tasks.write_text(json.dumps([{"id": i, "data": {"text": t}} for i, t in enumerate(texts, 1)]))
    out = tmp_path / "o.json"
    result = run("predict", f"{models}:Greedy", "--tasks", tasks, "--config", CONFIG, "--out", out)
    assert result.exit_code == 1
    assert (
        "Greedy.predict ran out of memory on task 3 alone: OutOfMemoryError: CUDA out of memory"
        in result.output
    )
    assert "4 predictions for 5 tasks" in result.output
    written = json.loads(out.read_text())
    scores = [[p["score"] for p in t["predictions"]] for t in written]
    assert scores == [[0.2], [0.2], [], [0.2], [0.2]]  # calls of 5, then 3 and 2, then 2 and 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "task 1 is int, not an object"),
        ('[{"data": "text"}]', "task 1: 'data' must be an object"),
        ("{not json", "not JSON"),
        ('{"a": 1}\n{oops}', "line 2: neither a JSON document nor JSON lines"),
    ],
)
def test_a_bad_tasks_file_is_a_usage_error(tmp_path, content, message):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(content)
    result = run("predict", TARGET, "--tasks", tasks, "--out", tmp_path / "o.json")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o.json").exists()


def test_a_bad_target_or_config_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<View><Choices")
    tasks = SENTIMENT / "tasks.json"
    result = run("predict", f"{SENTIMENT / 'model.py'}:Nope", "--tasks", tasks)
    assert result.exit_code == 2
    assert 'Attribute "Nope" not found' in result.output
    result = run("predict", TARGET, "--tasks", tasks, "--config", bad)
    assert result.exit_code == 2
    assert "--config" in result.output
    assert run("check", tasks, "--config", bad).exit_code == 2


def test_predict_runs_as_a_command(tmp_path):
    out = tmp_path / "out.json"
    command = [sys.executable, "-m", "relaxml", "predict", TARGET, "--out", str(out),
               "--tasks", str(SENTIMENT / "tasks.json"), "--config", str(CONFIG)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Predicting" in done.stderr
    assert len(json.loads(out.read_text())) == 6


def test_a_task_whose_predict_raises_alone_is_listed_and_the_rest_predicted(models, tmp_path):
    tasks = tmp_path / "tasks.json"
    texts = ["a", "b", "c", "d", "e", "bad", "g", "h", "i"]
    tasks.write_text(json.dumps([{"id": i, "data": {"text": t}} for i, t in enumerate(texts, 1)]))
    out = tmp_path / "o.json"
    result = run("predict", f"{models}:Raises", "--tasks", tasks, "--config", CONFIG, "--out", out)
    assert result.exit_code == 1
    assert "task 6: predict raised ValueError: cannot read this one" in result.output
    assert "8 predictions for 9 tasks" in result.output
    written = json.loads(out.read_text())
    scores = [[p["score"] for p in t["predictions"]] for t in written]
    # 1-8 raises: 1-4 pass; 5-8 raises: 5-6 raises (5 alone passes, 6 alone fails), 7-8 pass
    assert scores == [[0.4]] * 4 + [[0.1], [], [0.2], [0.2], [0.1]]


def test_engine_ray_without_ray_installed_says_how_to_install_it(tmp_path):
    hide_ray = "import sys; sys.modules['ray'] = None; from relaxml.cli import main; main()"
    command = [sys.executable, "-c", hide_ray, "predict", TARGET, "--out", str(tmp_path / "o"),
               "--tasks", str(SENTIMENT / "tasks.json"), "--engine", "ray"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "--engine ray needs Ray: pip install 'relaxml[ray]'" in done.stderr
    assert not (tmp_path / "o").exists()
