"""`lrx emulator cmars`: a local CMaRS that honours connectors/cmars/openapi.yaml."""

from __future__ import annotations

import click
from aiohttp import web

from connectors.doubles.cmars_emulator import create_app
from deploy.settings import Settings
from deploy.wiring import emulator_config
from streams.rules.colleges import CollegeRegistryError


@click.group("emulator")
def command() -> None:
    """Emulators of the systems lrx delivers to, for local runs, tests and demos."""


@command.command("cmars")
@click.option("--host", default=None, help="Address to listen on [LRX_EMULATOR_HOST].")
@click.option("--port", type=int, default=None, help="Port to listen on [LRX_EMULATOR_PORT].")
@click.pass_obj
def cmars(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve an emulated CMaRS push API until Ctrl-C or SIGTERM.

    It checks the token (LRX_EMULATOR_TOKEN) and every record, answering WS400 for
    colleges not enabled in the registry and WS401 for OCI IDs missing from the
    roster (LRX_EMULATOR_ROSTER, optional). It is idempotent by batch id and record
    id and makes accepted records visible at its refresh (LRX_EMULATOR_REFRESH).
    Faults come from the LRX_EMULATOR_* settings and can be switched at runtime:

    \b
      curl -X POST localhost:8089/admin/faults -d '{"auth_failure": true}'
      curl -X POST localhost:8089/admin/faults -d '{"outage_for": 20}'
      curl localhost:8089/admin/records        # what it accepted
      curl -X POST localhost:8089/admin/refresh
      curl localhost:8089/lrx/v1/openapi.yaml  # the contract
    """
    try:
        config = emulator_config(settings)
    except (OSError, ValueError, CollegeRegistryError) as error:
        raise click.ClickException(str(error)) from None
    host = host or settings.emulator_host
    port = port or settings.emulator_port
    click.echo(
        f"CMaRS emulator on http://{host}:{port} "
        f"(colleges {', '.join(sorted(config.supported_colleges))}; "
        f"roster {'of ' + str(len(config.roster)) if config.roster is not None else 'open'})"
    )
    web.run_app(create_app(config), host=host, port=port, print=None, access_log=None)
