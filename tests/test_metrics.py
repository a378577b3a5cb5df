"""`Metrics`: counters, cumulative histograms and scrape-time gauges in Prometheus text."""

from __future__ import annotations

from relaxml._metrics import Metrics


def test_histogram_buckets_are_cumulative():
    metrics = Metrics()
    for value in (0.0005, 0.003, 0.003, 50.0):
        metrics.observe("latency_seconds", value, route="/predict")
    text = metrics.render()
    assert 'latency_seconds_bucket{route="/predict",le="0.001"} 1' in text
    assert 'latency_seconds_bucket{route="/predict",le="0.0025"} 1' in text
    assert 'latency_seconds_bucket{route="/predict",le="0.005"} 3' in text
    assert 'latency_seconds_bucket{route="/predict",le="100"} 4' in text
    assert 'latency_seconds_bucket{route="/predict",le="+Inf"} 4' in text
    assert 'latency_seconds_count{route="/predict"} 4' in text
    assert 'latency_seconds_sum{route="/predict"} 50.0065' in text


def test_counters_labels_and_gauges():
    metrics = Metrics()
    metrics.describe("things_total", "counter", "Things done")
    metrics.inc("things_total", kind='a "quoted"\nvalue')
    metrics.inc("things_total", 2, kind="b")
    metrics.collector(lambda: [("depth", "gauge", "Queue depth", (("state", "queued"),), 3)])
    text = metrics.render()
    assert "# HELP things_total Things done\n# TYPE things_total counter" in text
    assert 'things_total{kind="a \\"quoted\\"\\nvalue"} 1' in text
    assert 'things_total{kind="b"} 2' in text
    assert "# TYPE depth gauge" in text
    assert 'depth{state="queued"} 3' in text
    assert metrics.value("things_total", kind="b") == 2
