"""Talking to Label Studio: its REST API (`LabelStudioClient`) and the media its tasks name
(`MediaFetcher`, which a model reaches as `context.media`).

The key is only ever sent to the origin it belongs to; see docs/security.md.
"""

from __future__ import annotations

from .client import LabelStudioClient, LabelStudioError
from .media import MediaError, MediaFetcher

__all__ = ["LabelStudioClient", "LabelStudioError", "MediaError", "MediaFetcher"]
