"""The CMaRS emulator as the tests run it: its configuration and a server on a free local port.

Its contract is tests/support/contract.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from connectors.doubles.cmars_emulator import STATE, CmarsState, EmulatorConfig, create_app
from deploy import wiring
from deploy.settings import Settings

TOKEN = "test-token"


def emulator_config(**changes: Any) -> EmulatorConfig:
    """The emulator as the settings' defaults make it, with the test token, no scheduled
    refresh, and `changes`."""
    defaults = Settings(emulator_token=TOKEN, emulator_refresh="")
    return dataclasses.replace(wiring.emulator_config(defaults), **changes)


@asynccontextmanager
async def running_emulator(config: EmulatorConfig) -> AsyncIterator[tuple[str, CmarsState]]:
    """The emulator on a free port of 127.0.0.1: (base URL, its state)."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", app[STATE]
    finally:
        await runner.cleanup()
