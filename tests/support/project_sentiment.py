"""The sentiment example with one instance per Label Studio project, for the end-to-end test
of per-project models: each project learns only from its own annotations."""

from __future__ import annotations

from examples.sentiment.model import NaiveBayesSentiment


class PerProjectSentiment(NaiveBayesSentiment):
    per_project = True
