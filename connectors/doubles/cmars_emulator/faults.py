"""What the emulator is told: its configuration and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Faults in force; POST /admin/faults changes them while the emulator runs."""

    error_rate: float = 0.0
    latency: float = 0.0
    rate_limit: float = 0.0
    retry_after: int = 1
    auth_failure: bool = False
    outages: list[tuple[float, float]] = field(default_factory=list)  # [start, end) since start

    def change(self, changes: dict[str, Any], uptime: float) -> None:
        """Apply a FaultChange document; ValueError names the field that cannot be used."""
        for name, value in changes.items():
            if name == "outage_for":
                seconds = _number(name, value)
                self.outages.append((uptime, uptime + seconds))
            elif name in ("error_rate", "latency", "rate_limit"):
                number = _number(name, value)
                if name == "error_rate" and number > 1:
                    raise ValueError("error_rate: must be between 0 and 1")
                setattr(self, name, number)
            elif name == "retry_after":
                self.retry_after = int(_number(name, value))
            elif name == "auth_failure":
                if not isinstance(value, bool):
                    raise ValueError("auth_failure: must be true or false")
                self.auth_failure = value
            else:
                raise ValueError(f"{name}: not a fault the emulator knows")

    def in_outage(self, uptime: float) -> bool:
        return any(start <= uptime < end for start, end in self.outages)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name}: must be a number, at least 0")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """What the emulator is told; deploy/wiring.py reads it from the LRX_EMULATOR_* settings."""

    token: str
    supported_colleges: frozenset[str]
    timezone: str  # of the refresh schedule
    roster: frozenset[str] | None = None  # None: every valid OCI ID is a known practitioner
    refresh: str = ""  # cron expression of the daily refresh; empty: only /admin/refresh
    faults: Faults = field(default_factory=Faults)
    max_batch_records: int = 1000
    max_body_bytes: int = 5_000_000
    seed: int | None = None
