"""Prometheus metrics of one lrx process, served as text at /metrics.

Each process (sink, gateway, ...) builds one `Metrics`, with a registry of its
own rather than prometheus_client's global one, so tests can run several
processes' worth of metrics side by side without name clashes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics", "metrics_server"]

log = logging.getLogger(__name__)

NAMESPACE = "lrx"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = ()
    ) -> Histogram:
        kwargs = {"buckets": buckets} if buckets else {}
        return Histogram(name, doc, labels, namespace=NAMESPACE, registry=self.registry, **kwargs)

    def render(self) -> bytes:
        """The metrics in Prometheus text exposition format."""
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (full name, e.g. lrx_sink_paused), for tests."""
        return self.registry.get_sample_value(name, labels or {})

    def add_route(self, app: web.Application, path: str = "/metrics") -> None:
        """Serve these metrics from an existing aiohttp app (the gateway's, say)."""

        async def handle(_: web.Request) -> web.Response:
            response = web.Response(body=self.render())
            response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
            response.charset = "utf-8"
            return response

        app.router.add_get(path, handle)


@asynccontextmanager
async def metrics_server(metrics: Metrics, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve /metrics on host:port while the block runs; yields the bound port, None if 0."""
    if port == 0:
        yield None
        return
    app = web.Application()
    metrics.add_route(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("metrics on http://%s:%s/metrics", host, port)
    try:
        yield port
    finally:
        await runner.cleanup()
