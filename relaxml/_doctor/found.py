"""What the doctor was told and what its checks found so far, for the checks after them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from ..labels.labelconfig import LabelConfig
from ..labelstudio.client import LabelStudioClient
from ..settings import Settings

CONNECT_TIMEOUT = 5.0  # seconds to connect to Label Studio or the backend
TIMEOUT = 10.0  # seconds to wait for an answer


@dataclass
class Found:
    """The options, then each check's findings (None: not known, because a check before it
    failed or could not run)."""

    url: str | None
    api_key: str | None
    project_id: int | None
    backend_url: str | None
    basic_auth: tuple[str, str] | None
    settings: Settings
    http: requests.Session = field(default_factory=requests.Session)  # no credentials
    client: LabelStudioClient | None = None
    key_kind: str | None = None  # "legacy token" or "personal access token"
    key_ok: bool = False
    legacy_disabled: bool = False
    project: dict[str, Any] | None = None
    config: LabelConfig | None = None
    backend_answers: bool = False
    backend_needs_auth: bool | None = None
    backend_version: str | None = None
    records: list[dict[str, Any]] | None = None
    record: dict[str, Any] | None = None

    def close(self) -> None:
        self.http.close()
        if self.client is not None:
            self.client.close()

    @property
    def project_label(self) -> str:
        return f"project {self.project_id}"
