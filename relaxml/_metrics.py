"""`Metrics`: counters and histograms rendered in Prometheus' text format, no dependency.

One `Metrics` per app (no globals). Gauges that mirror other state (outbox depth, training
runs) are read at scrape time through `collectors`.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

Labels = tuple[tuple[str, str], ...]

MAX_SERIES = 500
"""Series per metric; beyond it, new label values are counted under `other` (a bound on memory)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100)


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def series_key(labels: Mapping[str, str]) -> Labels:
    """The key of one series: its labels, sorted by name (`Metrics.inc_series`)."""
    return tuple(sorted(labels.items()))


def _bounded(series: Mapping[Labels, object], key: Labels) -> Labels:
    """`key`, or every label `other` when the metric already has `MAX_SERIES` series."""
    if key in series or len(series) < MAX_SERIES:
        return key
    return tuple((name, "other") for name, _ in key)


class Metrics:
    """A small thread-safe registry of counters, histograms and scrape-time gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._collectors: list[Callable[[], Iterable[tuple[str, str, str, Labels, float]]]] = []

    def describe(self, name: str, kind: str, help_text: str) -> None:
        """Declare a metric's type (`counter`, `gauge`, `histogram`) and help line."""
        self._help[name] = (kind, help_text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add `value` to a counter."""
        self.inc_series(name, series_key(labels), value)

    def inc_series(self, name: str, key: Labels, value: float = 1.0) -> None:
        """`inc` with the series' key made beforehand (`series_key`): for hot paths."""
        with self._lock:
            series = self._counters[name]
            key = _bounded(series, key)
            series[key] = series.get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram (latency buckets, in seconds)."""
        self.observe_series(name, value, series_key(labels))

    def observe_series(self, name: str, value: float, key: Labels) -> None:
        """`observe` with the series' key made beforehand (`series_key`)."""
        slot = bisect.bisect_left(LATENCY_BUCKETS, value)  # the first bucket it falls in
        with self._lock:
            series = self._histograms[name]
            key = _bounded(series, key)
            counts = series.get(key)
            if counts is None:
                # one count per bucket (+Inf last), then the sum; made cumulative when rendered
                counts = series[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            counts[slot] += 1
            counts[-1] += value

    def collector(self, fn: Callable[[], Iterable[tuple[str, str, str, Labels, float]]]) -> None:
        """Add a function yielding `(name, kind, help, labels, value)` at every scrape."""
        self._collectors.append(fn)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 when never incremented)."""
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """Everything, in Prometheus' text exposition format."""
        lines: list[str] = []
        with self._lock:
            counters = {k: dict(v) for k, v in self._counters.items()}
            histograms = {
                k: {lk: list(c) for lk, c in v.items()} for k, v in self._histograms.items()
            }
        for name, series in sorted(counters.items()):
            self._header(lines, name, "counter")
            lines += [f"{name}{_labels(k)} {_number(v)}" for k, v in sorted(series.items())]
        for name, hseries in sorted(histograms.items()):
            self._header(lines, name, "histogram")
            for key, counts in sorted(hseries.items()):
                total = 0.0
                for i, bound in enumerate(LATENCY_BUCKETS):
                    total += counts[i]
                    le = f'le="{bound}"'
                    lines.append(f"{name}_bucket{_labels(key, le)} {_number(total)}")
                total += counts[-2]
                inf = 'le="+Inf"'
                lines.append(f"{name}_bucket{_labels(key, inf)} {_number(total)}")
                lines.append(f"{name}_sum{_labels(key)} {counts[-1]!r}")
                lines.append(f"{name}_count{_labels(key)} {_number(total)}")
        gauges: dict[str, list[str]] = defaultdict(list)
        for collect in self._collectors:
            for name, kind, help_text, labels, value in collect():
                if name not in gauges:
                    self._help.setdefault(name, (kind, help_text))
                gauges[name].append(f"{name}{_labels(labels)} {_number(value)}")
        for name, series_lines in sorted(gauges.items()):
            self._header(lines, name, self._help[name][0])
            lines += series_lines
        return "\n".join(lines) + "\n"

    def _header(self, lines: list[str], name: str, kind: str) -> None:
        kind, help_text = self._help.get(name, (kind, name))
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")


def describe_metrics(metrics: Metrics) -> None:
    """Declare relaxml's own metrics."""
    for name, kind, text in (
        ("relaxml_requests_total", "counter", "HTTP requests by route, method and status"),
        ("relaxml_request_duration_seconds", "histogram", "HTTP request latency by route"),
        ("relaxml_tasks_predicted_total", "counter", "Tasks predicted, by mode"),
        ("relaxml_predict_errors_total", "counter", "Tasks whose prediction failed, by mode"),
        ("relaxml_oom_splits_total", "counter", "Calls out of memory, split in halves, by mode"),
        ("relaxml_oom_failures_total", "counter", "Tasks out of memory alone, by mode"),
        ("relaxml_deliveries_total", "counter", "Predictions sent to Label Studio, by outcome"),
        ("relaxml_training_runs_total", "counter", "Training runs finished, by state"),
        ("relaxml_model_loads_total", "counter", "Per-project model instances built"),
        ("relaxml_model_evictions_total", "counter", "Per-project model instances dropped"),
        ("relaxml_project_predictions_total", "counter", "Tasks predicted, by project"),
    ):
        metrics.describe(name, kind, text)
