"""The sink's metrics: delivered, dead-lettered, retried, its lag, and whether it waits."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from connectors.metrics import Metrics

__all__ = ["SinkMetrics"]

BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass(frozen=True)
class SinkMetrics:
    recipient: str
    metrics: Metrics  # the process's registry and /metrics, which these are part of
    delivered: Counter
    dead_lettered: Counter
    retries: Counter
    batch_seconds: Histogram
    lag: Gauge
    paused: Gauge

    @classmethod
    def create(cls, recipient: str, metrics: Metrics | None = None) -> SinkMetrics:
        metrics = metrics or Metrics()
        return cls(
            recipient=recipient,
            metrics=metrics,
            delivered=metrics.counter(
                "sink_records_delivered",
                "Records the recipient accepted or already had (outcome label).",
                ["recipient", "outcome"],
            ),
            dead_lettered=metrics.counter(
                "sink_records_dead_lettered",
                "Records written to the dead-letter topic, by reason code.",
                ["recipient", "reason"],
            ),
            retries=metrics.counter(
                "sink_retries",
                "Batch requests retried, by cause (status code, timeout, auth).",
                ["recipient", "cause"],
            ),
            batch_seconds=metrics.histogram(
                "sink_batch_seconds",
                "Seconds from a batch's first request until all its records settled.",
                ["recipient"],
                BATCH_BUCKETS,
            ),
            lag=metrics.gauge(
                "sink_lag_records",
                "Records in the outbox partition not yet settled (high watermark - committed).",
                ["recipient", "partition"],
            ),
            paused=metrics.gauge(
                "sink_paused",
                "1 while the recipient refuses our credential (401/403) and the sink waits.",
                ["recipient"],
            ),
        )
