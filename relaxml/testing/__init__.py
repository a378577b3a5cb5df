"""Testing a model: serve it in process, fake Label Studio, build tasks and contexts.

```python
from relaxml.testing import FakeLabelStudio, make_context, make_task, serve

def test_predicts_a_choice():
    with serve(MyModel) as served:
        (prediction,) = served.predict([{"id": 1, "data": {"text": "great"}}], CONFIG)
        assert prediction["result"][0]["value"]["choices"] == ["positive"]
```

`serve` needs Starlette's test client, which needs `httpx2`: install `relaxml[testing]`.
"""

from __future__ import annotations

from ._assertions import assert_predict_response, assert_prediction
from ._factories import make_context, make_event, make_task
from ._fakelabelstudio import FakeLabelStudio
from ._served import ServedModel, serve, wait_for_training

__all__ = [
    "FakeLabelStudio",
    "ServedModel",
    "assert_predict_response",
    "assert_prediction",
    "make_context",
    "make_event",
    "make_task",
    "serve",
    "wait_for_training",
]
