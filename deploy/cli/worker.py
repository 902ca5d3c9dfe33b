"""`lrx worker`: run the stream processing worker (the Faust app in streams/worker/app.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from functools import partial

import click

from connectors.metrics import metrics_server
from deploy.settings import Settings
from deploy.topic_provisioning import describe_catalogue
from deploy.worker_metrics import WorkerMetrics


@click.command("worker")
@click.option(
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level of the worker and Faust.",
)
@click.pass_obj
def command(settings: Settings, loglevel: str) -> None:
    """Run a worker that enriches, checks and routes every learning record.

    It reads lms.learning-records and lms.user-profiles, and the course
    subscriptions of lrx.course-recipients whole; it writes lrx.outbox.<recipient>,
    lrx.ineligible and lrx.pending. Workers with the same LRX_APP_ID share the
    partitions; set LRX_WORKER_WEB_PORT to give each its own Faust web port
    (0, the default, turns the web server off). Prometheus metrics are on
    LRX_METRICS_PORT (0: off). Stop it with Ctrl-C or SIGTERM.

    The topics must exist first: `lrx topics create`.
    """
    missing = [s.topic.name for s in asyncio.run(describe_catalogue(settings)) if not s.exists]
    if missing:
        raise click.ClickException(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}; "
            "run `lrx topics create` first"
        )
    import faust  # imported here: faust is slow to import and only the worker needs it

    from deploy.wiring import pipeline_app

    logging.getLogger().setLevel(loglevel.upper())
    observer = WorkerMetrics(on_crash=partial(_exit_unless_stopped, settings.pipeline_read_timeout))
    pipeline = pipeline_app(settings, observer=observer)

    @pipeline.app.task
    async def serve_metrics() -> None:
        # Runs for the worker's life; Faust cancels it at shutdown, which closes the server.
        host, port = settings.metrics_host, settings.metrics_port
        async with metrics_server(observer.metrics, host, port):
            await asyncio.Event().wait()

    worker = faust.Worker(
        pipeline.app,
        loglevel=loglevel.upper(),
        quiet=True,
        override_logging=False,
    )
    worker.execute_from_commandline()


def _exit_unless_stopped(grace: float, error: BaseException) -> None:
    """After a crash, give Faust `grace` seconds to stop, then exit with code 1 regardless.

    Faust's shutdown flushes its producer, which waits forever for a broker that is
    gone; the supervisor must see the worker exit. Nothing is lost: what was not
    committed is read again after the restart.
    """
    timer = threading.Timer(grace, os._exit, args=(1,))
    timer.daemon = True
    timer.start()
