"""The one configuration of lrx: every setting, its LRX_ variable, default and meaning.

Each process builds one frozen `Settings` at its entrypoint (`Settings.from_env()`)
and passes it down. Defaults run everything locally on the embedded broker.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Settings", "SettingsError", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    # --- Kafka clients: pointing lrx at another cluster is only these settings.
    kafka_bootstrap: str = setting(
        "LRX_KAFKA_BOOTSTRAP",
        "",
        "Kafka bootstrap servers, host:port[,host:port]. Empty means the embedded "
        "local broker at 127.0.0.1:LRX_BROKER_PORT.",
    )
    kafka_security_protocol: str = setting(
        "LRX_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: str = setting(
        "LRX_KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is used."
    )
    kafka_sasl_username: str = setting("LRX_KAFKA_SASL_USERNAME", "", "SASL user name.")
    kafka_sasl_password: str = setting("LRX_KAFKA_SASL_PASSWORD", "", "SASL password.")
    kafka_ssl_cafile: str = setting(
        "LRX_KAFKA_SSL_CAFILE", "", "CA bundle that signs the brokers' certificates (TLS)."
    )
    kafka_ssl_certfile: str = setting(
        "LRX_KAFKA_SSL_CERTFILE", "", "Client certificate, for mutual TLS."
    )
    kafka_ssl_keyfile: str = setting("LRX_KAFKA_SSL_KEYFILE", "", "Client key, for mutual TLS.")
    replication_factor: int = setting(
        "LRX_REPLICATION_FACTOR",
        1,
        "Replication factor of the topics lrx creates. 1 locally; 3 in production.",
    )

    topic_partitions: int = setting(
        "LRX_TOPIC_PARTITIONS",
        4,
        "Partitions of the keyed topics (records, profiles, outboxes). Streams and the "
        "tables they join must agree, so change it only on a fresh cluster.",
    )

    # --- Recipients: who may subscribe to a course's learning records.
    recipients: tuple[str, ...] = setting(
        "LRX_RECIPIENTS",
        ("cmars",),
        "Comma-separated recipient ids. Each gets lrx.outbox.<id> and lrx.dlq.<id>.",
    )
    recipient_aliases: tuple[str, ...] = setting(
        "LRX_RECIPIENT_ALIASES",
        ("tahsn=cmars",),
        "Comma-separated alias=recipient pairs: other names systems show for a recipient.",
    )

    # --- Domain rules (streams/): the college registry and the reporting period.
    colleges_file: Path = setting(
        "LRX_COLLEGES_FILE",
        REPO_ROOT / "streams" / "colleges.json",
        "JSON registry of the colleges an OCI ID can name (code, name, country, province, "
        "enabled for CMaRS). A known college that is not enabled is the WS400 case.",
    )
    period_start: str = setting(
        "LRX_PERIOD_START",
        "04-01",
        "MM-DD on which each reporting period starts, at local midnight; 04-01 is the fiscal "
        "year (label 2026-27), 01-01 the calendar year (label 2026).",
    )
    period_timezone: str = setting(
        "LRX_PERIOD_TIMEZONE",
        "America/Toronto",
        "IANA time zone of the reporting period's boundaries.",
    )

    # --- The embedded broker (deploy/kafka), used when LRX_KAFKA_BOOTSTRAP is empty.
    broker_port: int = setting("LRX_BROKER_PORT", 9092, "Client port of the embedded broker.")
    broker_controller_port: int = setting(
        "LRX_BROKER_CONTROLLER_PORT",
        0,
        "KRaft controller port of the embedded broker; 0 means LRX_BROKER_PORT + 1.",
    )
    broker_heap: str = setting(
        "LRX_BROKER_HEAP", "512m", "JVM heap of the embedded broker (-Xms and -Xmx)."
    )
    broker_start_timeout: float = setting(
        "LRX_BROKER_START_TIMEOUT",
        60.0,
        "Seconds `lrx broker start` waits for the broker to answer a metadata request.",
    )
    run_dir: Path = setting(
        "LRX_RUN_DIR",
        REPO_ROOT / ".run",
        "Git-ignored folder for broker data, logs and PID files.",
    )
    kafka_libs_dir: Path = setting(
        "LRX_KAFKA_LIBS",
        REPO_ROOT / "deploy" / "kafka" / "libs",
        "Folder of the broker's jars, filled from Maven Central by `lrx broker fetch`.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every LRX_ variable, converting and validating it; unknown LRX_ names fail."""
        environ = os.environ if environ is None else environ
        known = {f.metadata["env"] for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in environ if k.startswith("LRX_") and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; see README 'Settings'")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _convert(f, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        protocols = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        if self.kafka_security_protocol not in protocols:
            raise SettingsError(
                f"LRX_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol!r} "
                f"is not one of {sorted(protocols)}"
            )
        if self.kafka_security_protocol.startswith("SASL") and not self.kafka_sasl_mechanism:
            raise SettingsError("LRX_KAFKA_SASL_MECHANISM is required with SASL")
        for name in ("broker_port", "replication_factor"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{_env_of(name)} must be at least 1")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.broker_port}"

    @property
    def controller_port(self) -> int:
        return self.broker_controller_port or self.broker_port + 1

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by every aiokafka producer, consumer and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if "SSL" in self.kafka_security_protocol:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
            if self.kafka_ssl_certfile:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile or None)
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password
        return options

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) for every setting, for the README and `lrx settings`."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default
            if isinstance(default, Path):
                default = _display_path(default)
            rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
        return rows


def _env_of(name: str) -> str:
    return next(f.metadata["env"] for f in dataclasses.fields(Settings) if f.name == name)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _convert(f: dataclasses.Field, raw: str) -> Any:
    env = f.metadata["env"]
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw).expanduser().resolve()
        if kind == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw.strip()
    except ValueError:
        raise SettingsError(f"{env}={raw!r} is not a valid {kind}") from None
