"""A CMaRS emulator: a real HTTP server that honours connectors/cmars/openapi.yaml.

It stands in for CMaRS in local runs, tests and benchmarks: it checks the token
and every record, answers WS400 for colleges CMaRS does not support and WS401
for practitioners missing from its optional roster, is idempotent by batch id
and by record id, publishes accepted records only at its daily refresh, and
injects faults (5xx, latency, outages, 429 with Retry-After, refused tokens).
`create_app(config)` builds it; all state lives on the app, none in globals.

faults.py holds what it is told (EmulatorConfig, Faults), state.py what it
remembers (CmarsState), validation.py what a well-formed batch is, and app.py
the HTTP handlers.
"""

from connectors.doubles.cmars_emulator.app import STATE, create_app
from connectors.doubles.cmars_emulator.faults import EmulatorConfig, Faults
from connectors.doubles.cmars_emulator.state import CmarsState

__all__ = ["EmulatorConfig", "Faults", "CmarsState", "create_app", "STATE"]
