"""The gateway with a fake publisher over real HTTP (aiohttp's TestServer), no broker.

Its timeouts, which need no server, are checked in tests/unit/test_gateway_timeouts.py."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from connectors.gateway.app import create_app
from deploy.settings import Settings
from deploy.wiring import gateway_config
from tests.support.gateway import FakePublisher
from tests.support.lms import course_completed

TOKEN = {"Authorization": "Bearer sb-token"}


def settings() -> Settings:
    return Settings().replace(
        ingest_tokens=("sunnybrook:sb-token", "mackenzie:mk-token"),
        site_urls=("sunnybrook=https://lms.sunnybrook.example",),
    )


async def test_the_token_decides_the_site_and_a_bad_token_is_refused():
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        refused = await client.post(
            "/v1/moodle/events", json=[course_completed()], headers={"Authorization": "Bearer x"}
        )
        assert refused.status == 401
        assert publisher.records == []
        answer = await client.post("/v1/moodle/events", json=[course_completed()], headers=TOKEN)
        assert answer.status == 202
    assert [r["site"] for r in publisher.records] == ["sunnybrook"]


async def test_token_and_site_url_maps_are_parsed_once_not_per_request(monkeypatch):
    calls = {"tokens": 0, "urls": 0}
    real_tokens, real_urls = Settings.site_of_token, Settings.site_url_map

    def counted_tokens(self: Settings) -> dict[str, str]:
        calls["tokens"] += 1
        return real_tokens(self)

    def counted_urls(self: Settings) -> dict[str, str]:
        calls["urls"] += 1
        return real_urls(self)

    monkeypatch.setattr(Settings, "site_of_token", counted_tokens)
    monkeypatch.setattr(Settings, "site_url_map", counted_urls)
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    parsed = dict(calls)
    async with TestClient(TestServer(app)) as client:
        for _ in range(5):
            answer = await client.post(
                "/v1/moodle/events", json=[course_completed()], headers=TOKEN
            )
            assert answer.status == 202
    assert len(publisher.records) == 5
    assert calls == parsed, "the gateway re-parsed LRX_INGEST_TOKENS or LRX_SITE_URLS"
