"""A model for tests/test_devices.py: it reports the device it was given, per process.

`warmup` writes `<RELAXML_TEST_DEVICES>/<pid>.json` with the device `__init__` saw and the one it
has. The worker whose device is `RELAXML_TEST_SLOW_DEVICE` waits in `warmup` until the file
`RELAXML_TEST_GATE` exists; with `RELAXML_TEST_WARMUP_FAIL` set, `warmup` raises, with
`RELAXML_TEST_INIT_FAIL`, `__init__`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from relaxml import Context, LabelStudioModel, Task


class DeviceProbe(LabelStudioModel):
    model_version = "probe-1"

    def __init__(self) -> None:
        if os.environ.get("RELAXML_TEST_INIT_FAIL"):
            raise RuntimeError("weights not found")
        self.device_in_init = self.device
        self.warmups = 0

    def warmup(self) -> None:
        if os.environ.get("RELAXML_TEST_WARMUP_FAIL"):
            raise RuntimeError("CUDA out of memory on the dummy batch")
        if self.device == os.environ.get("RELAXML_TEST_SLOW_DEVICE"):
            gate = Path(os.environ["RELAXML_TEST_GATE"])
            deadline = time.monotonic() + 60
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.warmups += 1
        out = os.environ.get("RELAXML_TEST_DEVICES")
        if out:
            report = {"init": self.device_in_init, "device": self.device}
            (Path(out) / f"{os.getpid()}.json").write_text(json.dumps(report))

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, object]]:
        said = {"from_name": "device", "to_name": "text", "type": "textarea"}
        result = [{**said, "value": {"text": [self.device]}}]  # says where it ran
        return [{"result": result, "score": float(self.warmups)} for _ in tasks]


class VersionedProbe(DeviceProbe):
    """A probe with `save`/`load`, for versions loaded into fresh instances; `warmup` raises
    while the class attribute `fail_warmup` is true."""

    model_version = "versioned-0"
    fail_warmup = False

    def warmup(self) -> None:
        if type(self).fail_warmup:
            raise RuntimeError("the new weights do not fit on the card")
        super().warmup()

    def save(self, path: Path) -> None:
        (path / "weights.txt").write_text("trained")

    def load(self, path: Path) -> None:
        self.weights = (path / "weights.txt").read_text()
