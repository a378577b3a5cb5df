"""Assertions that an answer is what Label Studio accepts, and reads as the model meant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..labels.validation import check_prediction


def assert_predict_response(answer: Any, task_count: int, label_config: str | None = None) -> None:
    """Fail unless `answer` is a `/predict` answer Label Studio 1.23 stores: `{"results":
    [...]}` with one entry per task, each a prediction (or a list of them) whose `result` is a
    list, whose `score` is a number or absent, whose `model_version` is a non-empty string, and,
    with `label_config`, whose items fit the config as the editor reads them. An error entry
    (`{"error": "out_of_memory", ...}`, a task relaxml could not predict) is allowed: Label
    Studio skips it."""
    assert isinstance(answer, Mapping), f"the answer is {type(answer).__name__}, not an object"
    results = answer.get("results")
    assert isinstance(results, list), f"'results' must be a list, got {results!r}"
    assert len(results) == task_count, f"{len(results)} results for {task_count} tasks"
    for position, entry in enumerate(results):
        if isinstance(entry, Mapping) and "error" in entry and "result" not in entry:
            # A task relaxml could not predict alone (out of memory): Label Studio skips such
            # an entry and stores the others.
            assert isinstance(entry["error"], str), f"results[{position}]: {entry!r}"
            continue
        for prediction in entry if isinstance(entry, list) else [entry]:
            assert_prediction(prediction, label_config, where=f"results[{position}]")


def assert_prediction(
    prediction: Any, label_config: str | None = None, *, where: str = "prediction"
) -> None:
    """Fail unless one prediction is stored by Label Studio as it is (see
    `assert_predict_response`), listing every problem `check_prediction` finds."""
    assert isinstance(prediction, Mapping), f"{where} is {type(prediction).__name__}"
    assert isinstance(prediction.get("result"), list), f"{where}: 'result' must be a list"
    version = prediction.get("model_version")
    assert isinstance(version, str), f"{where}: 'model_version' must be a string"
    assert version, f"{where}: 'model_version' is empty (Label Studio then fails to open the task)"
    score = prediction.get("score")
    assert score is None or isinstance(score, (int, float)), f"{where}: 'score' {score!r}"
    if label_config is not None:
        problems = check_prediction(label_config, prediction)
        assert not problems, f"{where} does not fit the label config:\n" + "\n".join(
            f"  {problem}" for problem in problems
        )
