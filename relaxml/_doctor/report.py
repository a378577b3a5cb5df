"""The doctor's report: one line per check, printed as it comes, then a summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._redaction import redact

OK = "ok"
WARN = "warn"
FAIL = "FAIL"
SKIP = "skip"


@dataclass(frozen=True)
class Line:
    """One check's outcome: a status, what was found, and for a problem how to fix it."""

    status: str
    text: str
    fix: str | None = None

    def render(self) -> str:
        """The line as printed: one line, redacted (no key or password ever shows)."""
        text = f"{self.status:<5} {_one_line(self.text)}"
        if self.fix:
            text += f"  fix: {_one_line(self.fix)}"
        return text


def _one_line(text: str) -> str:
    return " ".join(redact(text).split())


class Report:
    """The lines so far; each is handed to `echo` as soon as it is added."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.lines: list[Line] = []
        self._echo = echo

    def add(self, status: str, text: str, fix: str | None = None) -> Line:
        line = Line(status, text, fix)
        self.lines.append(line)
        self._echo(line.render())
        return line

    def ok(self, text: str) -> Line:
        return self.add(OK, text)

    def warn(self, text: str, fix: str | None = None) -> Line:
        return self.add(WARN, text, fix)

    def fail(self, text: str, fix: str | None = None) -> Line:
        return self.add(FAIL, text, fix)

    def skip(self, text: str) -> Line:
        return self.add(SKIP, text)

    def count(self, status: str) -> int:
        return sum(line.status == status for line in self.lines)

    @property
    def failed(self) -> bool:
        """Whether any check failed (the exit status is then 1)."""
        return self.count(FAIL) > 0

    def summary(self) -> str:
        """`3 ok, 1 warning, 1 failed, 2 skipped`, and what it means."""
        warnings = self.count(WARN)
        counts = (
            f"{self.count(OK)} ok, {warnings} warning{'' if warnings == 1 else 's'}, "
            f"{self.count(FAIL)} failed, {self.count(SKIP)} skipped"
        )
        if self.failed:
            return f"{counts}: fix the FAIL lines, then run relaxml doctor again"
        return f"{counts}: no problem found"
