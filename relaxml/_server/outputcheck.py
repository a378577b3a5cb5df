"""`OutputCheck`: predictions a served model returns, checked against the label config.

Label Studio stores whatever it gets, and its editor silently drops items whose names, types
or labels do not match the config. `RELAXML_VALIDATE` chooses:

- `warn` (default): log each kind of problem once. Mistakes in a model's output are
  systematic, so to keep requests fast it checks the first `WARN_SAMPLE` predictions of each
  request, and at most `WARN_PER_SECOND` predictions a second in all (a budget that starts
  full, so a server's first requests are always checked).
- `error`: check every prediction and refuse the answer with a JSON 500 naming the problem.
- `off`: no check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..errors import ModelOutputError
from ..labels.validation import Problem, check_result
from ..prediction import Entry
from ..protocol import Task

logger = logging.getLogger(__name__)

MAX_REMEMBERED = 1000
"""Most problem kinds remembered as reported (each key at most `KEY_CHARS` long)."""
KEY_CHARS = 200
WARN_SAMPLE = 8
WARN_PER_SECOND = 200.0


class OutputCheck:
    """Checks predictions for one model; remembers which problems it already reported."""

    def __init__(self, mode: str, source: str) -> None:
        self.mode = mode
        self.source = source
        self._reported: set[str] = set()
        self._budget = WARN_PER_SECOND  # predictions `warn` may still check; refills each second
        self._refilled = time.monotonic()

    def __call__(self, tasks: Sequence[Task], entries: Sequence[Entry], label_config: str) -> None:
        """Check each task's predictions; log or raise `ModelOutputError` per the mode."""
        if self.mode == "off":
            return
        if self.mode == "warn":
            count = self._allowance(min(len(entries), WARN_SAMPLE))
            if not count:
                return
            tasks, entries = tasks[:count], entries[:count]
        for task, entry in zip(tasks, entries, strict=True):
            for prediction in entry if isinstance(entry, list) else [entry]:
                problems = check_result(label_config, prediction["result"])
                if problems:
                    self._report(task, problems)

    def _allowance(self, wanted: int) -> int:
        """How many of `wanted` predictions `warn` checks now, within its budget."""
        now = time.monotonic()
        self._budget = min(WARN_PER_SECOND, self._budget + (now - self._refilled) * WARN_PER_SECOND)
        self._refilled = now
        count = min(wanted, int(self._budget))
        self._budget -= count
        return count

    def _report(self, task: Task, problems: list[Problem]) -> None:
        first = problems[0]
        text = f"{self.source}, task {task.id}: {first}"
        if len(problems) > 1:
            text += f" (and {len(problems) - 1} more)"
        if self.mode == "error" and first.code != "bad-config":
            raise ModelOutputError(f"{text}; Label Studio's editor would drop it")
        key = f"{first.code}:{first.message}"[:KEY_CHARS]
        if key not in self._reported and len(self._reported) < MAX_REMEMBERED:
            self._reported.add(key)
            logger.warning(
                "%s; Label Studio's editor drops such items (RELAXML_VALIDATE=error refuses them)",
                text,
            )
