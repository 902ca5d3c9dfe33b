"""`lrx gateway`: serve the ingest gateway."""

from __future__ import annotations

import click
from aiohttp import web

from connectors.gateway.app import create_app
from deploy.settings import Settings
from deploy.wiring import gateway_config


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.pass_obj
def command(settings: Settings, host: str) -> None:
    """Serve the LMS ingest gateway on LRX_GATEWAY_PORT.

    Endpoints: POST /v1/learning-records, /v1/moodle/events, /xapi/statements,
    /v1/users; GET /healthz, /readyz, /openapi.yaml, /metrics. Requests need a
    bearer token from LRX_INGEST_TOKENS; each token belongs to one site. Writes
    are answered 202 only after Kafka acknowledged them (acks=all).
    """
    sites = sorted(set(settings.site_of_token().values()))
    click.echo(f"gateway for site(s) {', '.join(sites)} -> Kafka {settings.bootstrap_servers}")
    web.run_app(
        create_app(gateway_config(settings)),
        host=host,
        port=settings.gateway_port,
        print=lambda _: click.echo(f"gateway listening on http://{host}:{settings.gateway_port}"),
    )
