"""`BlobCache`: the content-addressed, size-capped file cache behind `MediaFetcher`.

Layout under the cache directory:

- `blobs/<sha256><suffix>`: one file per distinct content, named by its SHA-256.
- `index/<sha256 of key>`: a one-line text file naming the blob a key (a task-data value and
  Label Studio's URL) was last downloaded to.
- `tmp/`: downloads in progress; renamed into `blobs/` once complete.

Every write is a rename within the directory, so readers never see half a file, and several
processes may share one cache. Eviction removes the least recently used blobs (a hit touches
its blob) until the total is under the cap; the blob just stored or returned is never evicted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

STALE_TMP_SECONDS = 3600.0
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,12}")
_BLOB_NAME = re.compile(r"[0-9a-f]{64}(\.[A-Za-z0-9]{1,12})?")


def clean_suffix(suffix: str) -> str:
    """`suffix` lower-cased if it is a plain extension like `.png`, else the empty string."""
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


class BlobCache:
    """Files stored by content hash, looked up by key, evicted least-recently-used. Thread-safe."""

    def __init__(self, directory: Path, cap_bytes: int) -> None:
        self.directory = Path(directory)
        self.cap_bytes = cap_bytes
        self._blobs = self.directory / "blobs"
        self._index = self.directory / "index"
        self._tmp = self.directory / "tmp"
        for folder in (self._blobs, self._index, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._remove_stale_downloads()

    def lookup(self, key: str) -> Path | None:
        """The blob stored for `key`, touched as recently used; None when absent or evicted."""
        entry = self._entry(key)
        with self._lock:
            try:
                name = entry.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                return None
            blob = self._blobs / name
            if not _BLOB_NAME.fullmatch(name) or not blob.is_file():
                return None
            with contextlib.suppress(OSError):
                os.utime(blob)
            return blob

    def temporary(self) -> tuple[IO[bytes], Path]:
        """A new binary file for a download in progress, and its path (for `store` or unlink)."""
        self._tmp.mkdir(parents=True, exist_ok=True)  # in case a cleaner emptied the cache
        fd, name = tempfile.mkstemp(dir=self._tmp, suffix=".part")
        return os.fdopen(fd, "wb"), Path(name)

    def store(self, key: str, temporary: Path, digest: str, suffix: str) -> Path:
        """Move a finished download into the cache under `key`; evict down to the cap.

        `digest` is the SHA-256 (hex) of the file's content; identical content is kept once.
        """
        blob = self._blobs / f"{digest}{clean_suffix(suffix)}"
        with self._lock:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._index.mkdir(parents=True, exist_ok=True)
            if blob.is_file():
                temporary.unlink(missing_ok=True)
                os.utime(blob)
            else:
                os.replace(temporary, blob)
            self._write_entry(key, blob.name)
            self._evict(keep=blob)
        return blob

    def size(self) -> int:
        """The total size of the stored blobs, in bytes."""
        return sum(size for _, size, _ in self._scan())

    def _entry(self, key: str) -> Path:
        return self._index / hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _write_entry(self, key: str, name: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".idx")
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(name)
        os.replace(tmp, self._entry(key))

    def _scan(self) -> list[tuple[float, int, Path]]:
        found = []
        with os.scandir(self._blobs) as entries:
            for entry in entries:
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        return found

    def _evict(self, keep: Path) -> None:
        blobs = self._scan()
        total = sum(size for _, size, _ in blobs)
        if total <= self.cap_bytes:
            return
        removed = False
        for _, size, path in sorted(blobs):
            if total <= self.cap_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
            total -= size
        if removed:
            self._drop_dangling_entries()

    def _drop_dangling_entries(self) -> None:
        with os.scandir(self._index) as entries:
            for entry in entries:
                try:
                    name = Path(entry.path).read_text(encoding="ascii").strip()
                except (OSError, UnicodeDecodeError):
                    name = ""
                if not name or not (self._blobs / name).exists():
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _remove_stale_downloads(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
