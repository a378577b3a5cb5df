"""Run Label Studio's own prediction validator (`LabelInterface.validate_prediction` of its SDK)
in the Label Studio venv of the end-to-end tests.

The SDK lives in that venv (`default_venv()`), not in relaxml's, and takes seconds to import, so
every case goes to one subprocess: JSON on stdin, JSON answers on stdout. The same call reads
the labeling configs of the templates Label Studio bundles
(`label_studio/annotation_templates/<group>/<name>/config.yml`), so a test can hold its own
reading of them against Label Studio's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .labelstudio import default_venv

_SCRIPT = r"""
import json, sys
from pathlib import Path
import yaml
import label_studio
from label_studio_sdk.label_interface import LabelInterface

request = json.load(sys.stdin)
root = Path(label_studio.__file__).parent / "annotation_templates"
templates = {
    str(path.parent.relative_to(root)): yaml.safe_load(path.read_text())["config"]
    for path in sorted(root.glob("*/*/config.yml"))
}
interfaces = {}
answers = []
for case in request["cases"]:
    name = case["config"]
    try:
        if name not in interfaces:
            interfaces[name] = LabelInterface(request["configs"][name])
        errors = interfaces[name].validate_prediction(case["prediction"], return_errors=True)
        answers.append([str(e) for e in errors])
    except Exception as error:  # the validator itself failed: Label Studio would reject
        answers.append([f"validator raised {type(error).__name__}: {error}"])
json.dump({"templates": templates, "answers": answers}, sys.stdout)
"""


def reference_python() -> Path:
    """The Python of the Label Studio venv (it may not exist)."""
    return default_venv() / "bin" / "python"


def template_dir() -> Path | None:
    """Where the Label Studio venv keeps the bundled templates, or None without the venv."""
    found = sorted(
        default_venv().glob("lib/python3*/site-packages/label_studio/annotation_templates")
    )
    return found[0] if found else None


def run_validator(
    configs: dict[str, str], cases: list[dict[str, Any]]
) -> tuple[dict[str, str], list[list[str]]]:
    """Validate each case (`config`, the name of one of `configs`; `prediction`) with Label
    Studio's validator.

    Returns the bundled templates' configs by `group/name`, as Label Studio reads them, and for
    each case the validator's errors (empty when it accepts the prediction).
    """
    completed = subprocess.run(
        [str(reference_python()), "-c", _SCRIPT],
        input=json.dumps({"configs": configs, "cases": cases}),
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    answer = json.loads(completed.stdout)
    return answer["templates"], answer["answers"]
