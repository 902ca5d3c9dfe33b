"""The gateway as the LRS of Moodle's logstore_xapi: the plugin's own requests, over real HTTP.

Each request is built by tests/support/logstore_xapi.py exactly as the plugin's
loader sends it (Basic key:secret, its version header, a JSON array, `[]` too).
The plugin counts only a 200 as success, so every status is asserted exactly.
The publisher is a fake: what reaches Kafka is tested end to end in tests/e2e.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.gateway.app import create_app
from connectors.lms.xapi_statements import statement_id_of
from deploy.settings import Settings
from deploy.wiring import gateway_config
from tests.support import logstore_xapi as plugin
from tests.support.gateway import FakePublisher

WWWROOT = "https://lms.sunnybrook.example"
WHEN = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
COURSE = {"wwwroot": WWWROOT, "user_id": 55, "course_id": 7, "course_fullname": "Fire Safety"}


def settings() -> Settings:
    return Settings().replace(
        ingest_tokens=("sunnybrook:sb-token", "mackenzie:mk-token"),
        site_urls=(f"sunnybrook={WWWROOT}",),
    )


def batch(release: str = plugin.V5) -> list[dict]:
    return [
        plugin.viewed_statement(**COURSE, time=WHEN, release=release),
        plugin.module_completion_statement(
            **COURSE, cmid=33, modname="scorm", name="SCORM", state=1, time=WHEN, release=release
        ),
        plugin.course_completed_statement(**COURSE, time=WHEN, release=release),
    ]


async def send(client: TestClient, statements: list, key="sunnybrook", secret="sb-token",
               release: str = plugin.V5):  # fmt: skip
    method, suffix, headers, body = plugin.plugin_request(statements, key, secret, release)
    return await client.request(method, "/xapi" + suffix, data=body, headers=headers)


@pytest.mark.parametrize("release", [plugin.V5, plugin.LEGACY_4X])
async def test_the_plugins_batch_is_answered_200_with_the_statement_ids_in_order(release):
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    statements = batch(release)
    async with TestClient(TestServer(app)) as client:
        answer = await send(client, statements, release=release)
        assert answer.status == 200, await answer.text()
        assert answer.headers["X-Experience-API-Version"] == "1.0.3"
        assert await answer.json() == [statement_id_of(s) for s in statements]
        again = await send(client, statements, release=release)
        assert await again.json() == await answer.json(), "the same statements, the same ids"
    records = publisher.records
    assert [(r["site"], r["source"], r["course"]["id"]) for r in records[:2]] == [
        ("sunnybrook", "activity_completion", "7"),
        ("sunnybrook", "xapi", "7"),
    ]
    ids = [r["record_id"] for r in records]
    assert ids[2:] == ids[:2], "posted twice: the same record ids (the pipeline dedupes them)"


async def test_an_empty_batch_is_a_success_too():
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        answer = await send(client, [])
        assert (answer.status, await answer.json()) == (200, [])
    assert publisher.records == []


@pytest.mark.parametrize(
    ("key", "secret"),
    [("sunnybrook", "wrong"), ("mackenzie", "sb-token"), ("", "sb-token")],
    ids=["wrong secret", "another site's key", "no key"],
)
async def test_basic_auth_needs_the_site_as_key_and_its_token_as_secret(key, secret):
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        answer = await send(client, batch(), key=key, secret=secret)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="lrx"'
        assert answer.headers["X-Experience-API-Version"] == "1.0.3"
    assert publisher.records == []


async def test_requests_must_name_an_xapi_version_and_the_bearer_tokens_still_work():
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    bearer = {"Authorization": "Bearer sb-token", "Content-Type": "application/json"}
    async with TestClient(TestServer(app)) as client:
        missing = await client.post("/xapi/statements", data=json.dumps(batch()), headers=bearer)
        assert missing.status == 400
        [problem] = (await missing.json())["errors"]
        assert problem["path"] == "X-Experience-API-Version"
        old = await client.post(
            "/xapi/statements", data=json.dumps(batch()),
            headers=bearer | {"X-Experience-API-Version": "1.0.0"},
        )  # fmt: skip
        assert old.status == 200
        about = await client.get("/xapi/about", headers=bearer)
        assert (about.status, (await about.json())["version"]) == (200, ["1.0.3", "1.0.0"])


async def test_put_stores_one_statement_under_the_given_id_and_answers_204():
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    statement = plugin.course_completed_statement(**COURSE, time=WHEN)
    statement_id = "4c1a6b3e-6a8e-4f61-9d8e-3f2b1c0a9e77"
    _, _, headers, _ = plugin.plugin_request([], "sunnybrook", "sb-token")
    async with TestClient(TestServer(app)) as client:
        answer = await client.put(
            f"/xapi/statements?statementId={statement_id}", data=json.dumps(statement),
            headers=headers,
        )  # fmt: skip
        assert answer.status == 204, await answer.text()
        bad = await client.put(
            "/xapi/statements?statementId=nope", data=json.dumps(statement), headers=headers
        )
        assert bad.status == 400
    [record] = publisher.records
    assert record["origin"]["xapi_statement_id"] == statement_id


async def test_an_invalid_statement_is_refused_by_index_and_field_and_nothing_is_stored():
    publisher = FakePublisher()
    app = create_app(gateway_config(settings()), publisher=publisher)  # type: ignore[arg-type]
    no_verb, not_moodle = batch(), batch()
    del no_verb[1]["verb"]  # invalid xAPI
    not_moodle[2]["object"]["id"] = "https://lms.sunnybrook.example/blocks/xp/index.php?id=7"
    async with TestClient(TestServer(app)) as client:
        for statements, expected in ((no_verb, ["[1].verb"]), (not_moodle, ["[2].object.id"])):
            answer = await send(client, statements)
            assert answer.status == 400
            assert [p["path"] for p in (await answer.json())["errors"]] == expected
    assert publisher.records == []


async def test_resources_lrx_does_not_serve_are_refused_clearly_never_5xx():
    app = create_app(gateway_config(settings()), publisher=FakePublisher())  # type: ignore[arg-type]
    _, _, headers, _ = plugin.plugin_request([], "sunnybrook", "sb-token")
    async with TestClient(TestServer(app)) as client:
        listing = await client.get("/xapi/statements", headers=headers)
        assert listing.status == 405 and listing.headers["Allow"] == "POST,PUT"
        state = await client.get("/xapi/activities/state", headers=headers)
        assert state.status == 404
        assert "statements only" in (await state.json())["error"]
        assert state.headers["X-Experience-API-Version"] == "1.0.3"


def test_the_basic_credential_is_what_the_plugin_sends():
    _, _, headers, _ = plugin.plugin_request([], "sunnybrook", "sb-token")
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"sunnybrook:sb-token").decode()
