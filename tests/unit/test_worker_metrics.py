"""The worker's metrics count what the pipeline reports."""

from __future__ import annotations

from deploy.worker_metrics import WorkerMetrics
from streams.worker.observer import Decision


def test_decisions_pending_and_batches_are_exposed():
    metrics = WorkerMetrics()
    metrics.decided(Decision.ROUTED)
    metrics.decided(Decision.INELIGIBLE, "no_recipient")
    metrics.decided(Decision.INELIGIBLE, "no_recipient")
    metrics.pending(7)
    metrics.batch_settled(250, 0.04)
    metrics.unreadable("lrx.pending")

    sample = metrics.metrics.sample
    assert (
        sample("lrx_worker_decisions_total", {"outcome": "ineligible", "reason": "no_recipient"})
        == 2
    )
    assert sample("lrx_worker_decisions_total", {"outcome": "routed", "reason": ""}) == 1
    assert sample("lrx_worker_pending_records") == 7
    assert sample("lrx_worker_events_total") == 250
    assert sample("lrx_worker_unreadable_messages_total", {"topic": "lrx.pending"}) == 1
    assert b"lrx_worker_batch_seconds_bucket" in metrics.metrics.render()
