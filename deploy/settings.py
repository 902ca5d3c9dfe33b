"""The one configuration of lrx: every setting, its LRX_ variable, default and meaning.

Each process builds one frozen `Settings` at its entrypoint (`Settings.from_env()`)
and passes it down. Defaults run everything locally on the embedded broker.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import LrxError
from schemas.topics import KEY_SEPARATOR

__all__ = ["Settings", "SettingsError", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(LrxError, ValueError):
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
        REPO_ROOT / "streams" / "rules" / "colleges.json",
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

    # --- Stream processing (streams/worker/app.py, `lrx worker`): the Faust worker.
    app_id: str = setting(
        "LRX_APP_ID",
        "lrx-pipeline",
        "Faust app id: the workers' consumer group and the prefix of their table changelogs. "
        "Workers with the same id share the partitions.",
    )
    worker_web_port: int = setting(
        "LRX_WORKER_WEB_PORT",
        0,
        "Port of Faust's web server (stats, health); 0 turns it off, so several workers "
        "can run on one machine.",
    )
    store: str = setting(
        "LRX_STORE",
        "memory://",
        "Faust table store: memory:// (tables rebuilt from their changelogs at start) or "
        "rocksdb:// (needs the rocksdict package).",
    )
    worker_session_timeout: float = setting(
        "LRX_WORKER_SESSION_TIMEOUT",
        10.0,
        "Seconds without heartbeats before Kafka gives a silent worker's partitions to "
        "the others (a killed worker's partitions wait this long).",
    )
    pending_sweep_interval: float = setting(
        "LRX_PENDING_SWEEP_INTERVAL",
        60.0,
        "Seconds between checks for pending records whose reporting period has closed; "
        "those become ineligible with the reason they were held for.",
    )
    pipeline_clock: str = setting(
        "LRX_PIPELINE_CLOCK",
        "",
        "ISO 8601 instant the worker takes as its start time (the clock then runs on from "
        "it), for tests and drills of a period change. Empty: the real clock.",
    )
    pipeline_batch_size: int = setting(
        "LRX_PIPELINE_BATCH_SIZE",
        1000,
        "Most input events the worker decides before it waits once for Kafka to acknowledge "
        "their outputs (and only then commits them).",
    )
    pipeline_batch_wait: float = setting(
        "LRX_PIPELINE_BATCH_WAIT",
        0.02,
        "Seconds the worker waits for a batch to fill before deciding the events it has; "
        "bounds the latency batching adds at low rates.",
    )
    pipeline_read_timeout: float = setting(
        "LRX_PIPELINE_READ_TIMEOUT",
        30.0,
        "Seconds the worker lets a read of its decision log (the output topics, read back "
        "when it takes partitions) or of lrx.course-recipients go without progress, or "
        "Kafka go without answering (it asks every 5 s), before it crashes, to restart from "
        "its committed offsets; a crashed worker that has not stopped this long after exits "
        "with code 1.",
    )

    # --- LMS ingress (connectors/gateway, connectors/lms, `lrx gateway`, `lrx publish`).
    ingest_tokens: tuple[str, ...] = setting(
        "LRX_INGEST_TOKENS",
        ("demo-site:demo-token",),
        "Comma-separated site:token pairs. Moodle event data names no site, so the bearer "
        "token a request presents decides which hospital site its records belong to.",
    )
    site_urls: tuple[str, ...] = setting(
        "LRX_SITE_URLS",
        (),
        "Comma-separated site=URL pairs. When set, an xAPI actor's account.homePage must "
        "be the URL of the posting credential's site.",
    )
    account_homepages: tuple[str, ...] = setting(
        "LRX_ACCOUNT_HOMEPAGES",
        (),
        "Comma-separated site=URL pairs: the account homepage a site's logstore_xapi "
        'sends with its "send username" option. An xAPI actor with that homePage is '
        "named by username, which lrx looks up in the site's profiles (lms.user-profiles).",
    )
    gateway_port: int = setting("LRX_GATEWAY_PORT", 8088, "Port of `lrx gateway`.")
    gateway_max_body: int = setting(
        "LRX_GATEWAY_MAX_BODY",
        4 * 1024 * 1024,
        "Largest request body the gateway accepts, in bytes; larger ones get 413.",
    )
    ingest_kafka_timeout: float = setting(
        "LRX_INGEST_KAFKA_TIMEOUT",
        10.0,
        "Seconds the gateway waits for Kafka to acknowledge a write before answering 503.",
    )

    # --- Admin commands (`lrx users import`, `lrx recipients`).
    admin_kafka_timeout: float = setting(
        "LRX_ADMIN_KAFKA_TIMEOUT",
        30.0,
        "Seconds `lrx users import` and `lrx recipients` wait for Kafka (a compacted topic "
        "read that makes no progress, or writes not acknowledged) before giving up.",
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

    # --- CMaRS delivery (connectors/cmars): the sink, its retries and schedule, and the emulator.
    cmars_url: str = setting(
        "LRX_CMARS_URL",
        "",
        "Base URL of the CMaRS push API (connectors/cmars/openapi.yaml). Empty: the local "
        "emulator at LRX_EMULATOR_HOST:LRX_EMULATOR_PORT with LRX_EMULATOR_TOKEN, which "
        "`lrx up` then starts.",
    )
    cmars_token: str = setting(
        "LRX_CMARS_TOKEN",
        "",
        "Bearer token the sink presents to the CMaRS at LRX_CMARS_URL; required with it.",
    )
    cmars_request_timeout: float = setting(
        "LRX_CMARS_REQUEST_TIMEOUT",
        30.0,
        "Seconds one POST to CMaRS may take before it is retried.",
    )
    sink_group: str = setting(
        "LRX_SINK_GROUP",
        "lrx.sink",
        "Consumer group prefix of the sinks; the group is <prefix>.<recipient>.",
    )
    sink_batch_records: int = setting(
        "LRX_SINK_BATCH_RECORDS", 500, "Most records in one batch sent to CMaRS."
    )
    sink_batch_bytes: int = setting(
        "LRX_SINK_BATCH_BYTES", 1_000_000, "Most bytes of records (JSON) in one batch."
    )
    sink_linger: float = setting(
        "LRX_SINK_LINGER",
        2.0,
        "Seconds a partly filled batch waits for more records before it is sent.",
    )
    sink_schedule: str = setting(
        "LRX_SINK_SCHEDULE",
        "continuous",
        "`continuous`, or a cron expression (e.g. `0 2 * * *`): at each window the sink "
        "drains the outbox up to the end offsets it read when the window opened.",
    )
    sink_timezone: str = setting(
        "LRX_SINK_TIMEZONE", "America/Toronto", "Time zone of LRX_SINK_SCHEDULE."
    )
    sink_retry_initial: float = setting(
        "LRX_SINK_RETRY_INITIAL", 0.5, "Seconds: the first retry backoff (full jitter below it)."
    )
    sink_retry_cap: float = setting(
        "LRX_SINK_RETRY_CAP", 60.0, "Seconds: the longest backoff between two retries."
    )
    sink_retry_max_time: float = setting(
        "LRX_SINK_RETRY_MAX_TIME",
        6 * 3600.0,
        "Seconds a batch keeps retrying transient failures (5xx, 429, timeouts) before its "
        "records are dead-lettered as retries_exhausted. 0 retries forever. Auth failures "
        "(401/403) never dead-letter.",
    )
    sink_auth_retry_interval: float = setting(
        "LRX_SINK_AUTH_RETRY_INTERVAL",
        60.0,
        "Seconds between retries while CMaRS refuses the credential (401/403).",
    )
    sink_shutdown_grace: float = setting(
        "LRX_SINK_SHUTDOWN_GRACE",
        10.0,
        "Seconds a stopping sink lets its batch in flight settle before abandoning it.",
    )
    sink_session_timeout: float = setting(
        "LRX_SINK_SESSION_TIMEOUT",
        10.0,
        "Seconds without heartbeats before Kafka hands a sink's partitions to another.",
    )
    metrics_port: int = setting(
        "LRX_METRICS_PORT",
        0,
        "Port of the Prometheus /metrics endpoint of an lrx process; 0 turns it off.",
    )
    metrics_host: str = setting(
        "LRX_METRICS_HOST", "127.0.0.1", "Address the /metrics endpoint listens on."
    )
    emulator_host: str = setting(
        "LRX_EMULATOR_HOST", "127.0.0.1", "Address `lrx emulator cmars` listens on."
    )
    emulator_port: int = setting("LRX_EMULATOR_PORT", 8089, "Port of `lrx emulator cmars`.")
    emulator_token: str = setting(
        "LRX_EMULATOR_TOKEN", "local-emulator-token", "Bearer token the emulator accepts."
    )
    emulator_colleges_file: str = setting(
        "LRX_EMULATOR_COLLEGES_FILE",
        "",
        "College registry whose enabled colleges the emulator supports (others: WS400). "
        "Empty: streams/rules/colleges.json.",
    )
    emulator_roster: str = setting(
        "LRX_EMULATOR_ROSTER",
        "",
        "File of canonical OCI IDs, one a line, that the emulator knows (others: WS401). "
        "Empty: every valid OCI ID is known.",
    )
    emulator_refresh: str = setting(
        "LRX_EMULATOR_REFRESH",
        "0 3 * * *",
        "Cron expression (LRX_SINK_TIMEZONE) of the emulator's daily refresh, after which "
        "accepted records become visible; empty: only POST /admin/refresh refreshes.",
    )
    emulator_error_rate: float = setting(
        "LRX_EMULATOR_ERROR_RATE", 0.0, "Fault: share (0 to 1) of batch requests answered 5xx."
    )
    emulator_latency: float = setting(
        "LRX_EMULATOR_LATENCY", 0.0, "Fault: seconds added to every batch answer."
    )
    emulator_outages: tuple[str, ...] = setting(
        "LRX_EMULATOR_OUTAGES",
        (),
        "Fault: outage windows as START+DURATION seconds after startup, comma-separated "
        "(e.g. `30+20`); during one every request gets 503.",
    )
    emulator_rate_limit: float = setting(
        "LRX_EMULATOR_RATE_LIMIT",
        0.0,
        "Fault: batch requests per second above which the emulator answers 429; 0 is no limit.",
    )
    emulator_retry_after: int = setting(
        "LRX_EMULATOR_RETRY_AFTER", 1, "Seconds the emulator's 429 tells clients to wait."
    )
    emulator_auth_failure: bool = setting(
        "LRX_EMULATOR_AUTH_FAILURE",
        False,
        "Fault: refuse every token with 401 (switch at runtime with POST /admin/faults).",
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
        self.site_of_token()
        self.site_url_map()
        if self.cmars_url and not self.cmars_token:
            raise SettingsError("LRX_CMARS_TOKEN is required when LRX_CMARS_URL is set")
        for name in ("broker_port", "replication_factor"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{_env_of(name)} must be at least 1")

    def site_of_token(self) -> dict[str, str]:
        """Bearer token -> site, from LRX_INGEST_TOKENS."""
        sites = {}
        for entry in self.ingest_tokens:
            site, token = _pair(entry, ":", "LRX_INGEST_TOKENS")
            if KEY_SEPARATOR in site:
                raise SettingsError(f"LRX_INGEST_TOKENS: site {site!r} contains {KEY_SEPARATOR!r}")
            sites[token] = site
        return sites

    def site_url_map(self) -> dict[str, str]:
        return dict(_pair(entry, "=", "LRX_SITE_URLS") for entry in self.site_urls)

    def account_homepage_map(self) -> dict[str, str]:
        return dict(_pair(entry, "=", "LRX_ACCOUNT_HOMEPAGES") for entry in self.account_homepages)

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

    @property
    def cmars_endpoint(self) -> tuple[str, str]:
        """(base URL, bearer token) of the CMaRS the sink delivers to: LRX_CMARS_URL with
        LRX_CMARS_TOKEN, or, when LRX_CMARS_URL is empty, the local emulator."""
        if self.cmars_url:
            return self.cmars_url, self.cmars_token
        return f"http://{self.emulator_host}:{self.emulator_port}", self.emulator_token

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) for every setting, for the README and `lrx settings`."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default
            if isinstance(default, Path):
                default = _display_path(default)
            elif isinstance(default, tuple):
                default = ",".join(default)  # as the variable would be written
            rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
        return rows


def _pair(entry: str, separator: str, env: str) -> tuple[str, str]:
    left, found, right = entry.partition(separator)
    if not found or not left.strip() or not right.strip():
        raise SettingsError(f"{env}: {entry!r} is not of the form a{separator}b")
    return left.strip(), right.strip()


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
