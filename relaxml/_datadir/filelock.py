"""`lock_file`: an exclusive lock on a file of the data directory, stamped with our pid.

The operating system drops the lock when its holder dies, even by SIGKILL. Without `fcntl`
(Windows) every lock is granted: a single process runs there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_file(path: Path, *, wait: bool = False) -> IO[str] | None:
    """The open file of `path`, locked exclusively and holding our pid; None when another
    process holds it and `wait` is False. Close the file to release the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    if fcntl is not None:
        try:
            flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            fcntl.flock(handle.fileno(), flags)
        except OSError:
            handle.close()
            return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
