"""The one configuration: defaults run locally, bad values name the variable."""

from __future__ import annotations

import pytest

from deploy.settings import Settings, SettingsError
from deploy.wiring import kafka_connection


def test_defaults_point_at_the_embedded_broker():
    settings = Settings.from_env({})
    assert settings.uses_embedded_broker
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.controller_port == 9093
    assert kafka_connection(settings).client_options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_external_cluster_is_only_configuration():
    settings = Settings.from_env(
        {
            "LRX_KAFKA_BOOTSTRAP": "kafka-1.example:9093,kafka-2.example:9093",
            "LRX_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LRX_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LRX_KAFKA_SASL_USERNAME": "lrx",
            "LRX_KAFKA_SASL_PASSWORD": "secret",
        }
    )
    options = kafka_connection(settings).client_options()
    assert not settings.uses_embedded_broker
    assert options["bootstrap_servers"] == "kafka-1.example:9093,kafka-2.example:9093"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "lrx"
    assert options["ssl_context"] is not None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LRX_BROKER_PORT": "ninety"}, "LRX_BROKER_PORT"),
        ({"LRX_KAFKA_SECURITY_PROTOCOL": "TLS"}, "LRX_KAFKA_SECURITY_PROTOCOL"),
        ({"LRX_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "LRX_KAFKA_SASL_MECHANISM"),
        ({"LRX_BROKR_PORT": "9092"}, "LRX_BROKR_PORT"),
        ({"LRX_REPLICATION_FACTOR": "0"}, "LRX_REPLICATION_FACTOR"),
    ],
)
def test_bad_values_name_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_every_setting_is_documented():
    for env, _default, doc in Settings.documentation():
        assert env.startswith("LRX_")
        assert len(doc) > 10, env


def test_a_site_name_cannot_contain_the_key_separator():
    with pytest.raises(SettingsError, match="LRX_INGEST_TOKENS"):
        Settings.from_env({"LRX_INGEST_TOKENS": "a/b:token"})
