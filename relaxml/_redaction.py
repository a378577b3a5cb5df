"""Redaction: no secret in a log line or an answer, by name and by value; safe log text.

`redact(text)` replaces what looks like a credential (`Authorization` values, `Token …`,
`password=…`, `client_secret: …`, `X-Amz-Signature=…`, JWTs) and every secret relaxml knows
(`remember`) with `[redacted]`. `escape(text)` makes text safe for one log line: CR, LF, ANSI
escapes and other control characters become `\\r`, `\\n`, `\\x1b`. Pure: no I/O, no Starlette.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from ._lru import LRU

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values are not remembered: they would redact common words
MAX_SECRETS = 1000  # the most recently seen secrets are remembered

# Names whose value is a secret: password, db_password, client_secret, refresh_token,
# x-api-key, secret_key, X-Amz-Signature, Signature, sig, ...
_NAMES = (
    r"[\w-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|signature|credential)"
    r"[\w-]*|[\w-]+[_-]key|access|refresh|sig|authorization|cookie"
)
_PATTERNS = [
    # "Authorization: Basic abc", 'authorization': 'Token abc'
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+"),
    # Token 9f8e..., Bearer abc.def, Basic dXNlcjpwYXNz (a digit or +/= tells it from prose)
    re.compile(r"(?i)(\b(?:token|bearer|basic)\s+)(?=[\w.~+/=-]*[0-9+/=])[\w.~+/=-]{8,}"),
    # "password": "x", access_token=x, 'client_secret': 'x', X-Api-Key: x, &sig=x
    re.compile(rf"(?i)(['\"]?\b(?:{_NAMES})\b['\"]?\s*[:=]\s*)('[^']*'|\"[^\"]*\"|[^\s,&;}}]+)"),
    # bare JWTs
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]
# Every pattern above needs one of these in the text: a cheap first look that spares the
# substitutions for most text.
_TRIGGER = re.compile(
    r"(?i)authorization|bearer|basic|password|passwd|passphrase|secret|token|key|signature|"
    r"credential|access|refresh|sig|cookie|eyJ"
)
_SECRET_NAME = re.compile(rf"(?i)^(?:{_NAMES}|pass|pwd|dsn)$")

_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_KEEP_NEWLINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


class _Secrets:
    """Pinned secrets (from the settings) and a bounded LRU of others. Thread-safe."""

    def __init__(self) -> None:
        self._pinned: set[str] = set()
        self._recent: LRU[str, bool] = LRU(MAX_SECRETS)
        self._lock = threading.Lock()
        self.snapshot: tuple[str, ...] = ()  # longest first, read without the lock

    def add(self, value: str, pinned: bool) -> None:
        with self._lock:
            if value in self._pinned:
                return
            if pinned:
                self._pinned.add(value)
                self._recent.pop(value)
            elif self._recent.get(value):
                return
            else:
                self._recent.put(value, True)
            values = self._pinned.union(self._recent.keys())
            self.snapshot = tuple(sorted(values, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._pinned.clear()
            self._recent.clear()
            self.snapshot = ()


_secrets = _Secrets()


def remember(value: object, *, pinned: bool = False) -> None:
    """Remember a secret value (a key, a password, a token): `redact` replaces it everywhere.

    `pinned` secrets (from the settings) are never forgotten; others are kept among the 1,000
    most recently seen. Values that are not strings, or shorter than 6 characters, are ignored.
    """
    if isinstance(value, str):
        value = value.strip()
        if len(value) >= MIN_SECRET:
            _secrets.add(value, pinned)


def remember_params(params: Mapping[str, object]) -> None:
    """Remember the values under secret-looking names (`password`, `db_password`, `*_token`, ...)
    in a mapping such as `extra_params`, nested mappings included."""
    for name, value in params.items():
        if isinstance(value, Mapping):
            remember_params(value)
        elif _SECRET_NAME.match(str(name)):
            remember(value)


def forget_all() -> None:
    """Forget every remembered secret (for tests)."""
    _secrets.clear()


def redact_values(text: str) -> str:
    """`text` with every remembered secret replaced by `[redacted]`."""
    for secret in _secrets.snapshot:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(text: str) -> str:
    """`text` with known secrets and anything that looks like a credential redacted."""
    text = redact_values(text)
    if not _TRIGGER.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """`text` safe for a log line: CR, LF, ESC and other control characters escaped.

    With `keep_newlines` (tracebacks), LF stays and everything else is escaped.
    """
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    if not pattern.search(text):
        return text
    return pattern.sub(_escape_char, text)
