"""A stand-in for torch, put on PYTHONPATH by tests/test_devices.py: nothing touches a GPU.

Importing it appends this process's id to the file `RELAXML_TEST_TORCH_IMPORTS` names, so a
test can tell which processes imported torch. `cuda.is_available()` answers what
`RELAXML_TEST_FAKE_GPU` says (a GPU unless it is "0").
"""

from __future__ import annotations

import os
from types import SimpleNamespace

_record = os.environ.get("RELAXML_TEST_TORCH_IMPORTS")
if _record:
    with open(_record, "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\n")


def _is_available() -> bool:
    return os.environ.get("RELAXML_TEST_FAKE_GPU", "1") != "0"


cuda = SimpleNamespace(is_available=_is_available)
