"""The stream worker's Prometheus metrics: the pipeline's observer hooks, counted."""

from __future__ import annotations

from collections.abc import Callable

from connectors.metrics import Metrics
from streams.worker.observer import Decision, PipelineObserver

__all__ = ["WorkerMetrics"]


class WorkerMetrics(PipelineObserver):
    """What ops watch on a worker: decisions by outcome and reason, what it holds, how fast."""

    def __init__(self, on_crash: Callable[[BaseException], None] = lambda error: None) -> None:
        self.on_crash = on_crash
        self.metrics = Metrics()
        self._decisions = self.metrics.counter(
            "worker_decisions", "Records decided, by outcome and reason", ["outcome", "reason"]
        )
        self._pending = self.metrics.gauge(
            "worker_pending_records", "Records this worker holds in lrx.pending"
        )
        self._events = self.metrics.counter("worker_events", "Input events decided and acked")
        self._batch_seconds = self.metrics.histogram(
            "worker_batch_seconds", "Time to decide a batch and have its outputs acknowledged"
        )
        self._unreadable = self.metrics.counter(
            "worker_unreadable_messages", "Messages read back that did not decode", ["topic"]
        )

    def decided(self, decision: Decision, reason: str = "") -> None:
        self._decisions.labels(str(decision), reason).inc()

    def pending(self, count: int) -> None:
        self._pending.set(count)

    def batch_settled(self, events: int, seconds: float) -> None:
        self._events.inc(events)
        self._batch_seconds.observe(seconds)

    def unreadable(self, topic: str) -> None:
        self._unreadable.labels(topic).inc()

    def crashed(self, error: BaseException) -> None:
        self.on_crash(error)
