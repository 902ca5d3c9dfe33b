"""The xAPI 1.0.3 statement resource (an LRS's receiving side), which logstore_xapi posts to.

An LRS answers a POST of statements with 200 and their ids, in order; logstore_xapi
counts nothing else as success (a 202 files the batch as failed, and it is sent
again). Its statements carry no id, so lrx gives each the same id every time it
comes (`statement_id_of`). Only the receiving part of the xAPI API is here: the
rest (GET statements, state, activity and agent profiles) is answered with a
clear 405 or 404, never a 5xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from connectors.gateway.json_body import read_json
from connectors.lms.problems import InvalidInput, Problem
from connectors.lms.xapi_statements import statement_id_of
from schemas.codec import UUID_TEXT

__all__ = ["XAPI_VERSION", "statement_routes", "xapi_version_middleware"]

XAPI_VERSION = "1.0.3"
VERSION_HEADER = "X-Experience-API-Version"
_SPOKEN = re.compile(r"1\.0(\.\d+)?")
PREFIX = "/xapi/"

# Stores one statement or an array of them (all or none); raises InvalidInput naming
# each problem by its path.
Store = Callable[[web.Request, object], Awaitable[None]]


@web.middleware
async def xapi_version_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every xAPI request names a 1.0.x version, and every answer names ours."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        if request.path != "/xapi/about":
            asked = request.headers.get(VERSION_HEADER, "")
            if not _SPOKEN.fullmatch(asked.strip()):
                problem = Problem(VERSION_HEADER, f"must name xAPI 1.0.x, not {asked!r}")
                return web.json_response(
                    {"error": "invalid input", "errors": [problem.as_json()]},
                    status=400,
                    headers={VERSION_HEADER: XAPI_VERSION},
                )
        response = await handler(request)
    except web.HTTPException as error:
        error.headers[VERSION_HEADER] = XAPI_VERSION
        raise
    response.headers[VERSION_HEADER] = XAPI_VERSION
    return response


def statement_routes(store: Store) -> list[web.AbstractRouteDef]:
    async def post_statements(request: web.Request) -> web.Response:
        body = await read_json(request)
        statements = _checked(body)
        if statements:
            await store(request, body)  # as it came: one statement's problems have no [index]
        return web.json_response([statement_id_of(s) for s in statements], status=200)

    async def put_statement(request: web.Request) -> web.Response:
        statement_id = request.query.get("statementId", "")
        if not UUID_TEXT.fullmatch(statement_id):
            raise InvalidInput([Problem("statementId", f"{statement_id!r} is not a UUID")])
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidInput([Problem("", "PUT takes one statement, an object")])
        if body.get("id", statement_id) != statement_id:
            raise InvalidInput([Problem("id", "differs from the statementId parameter")])
        statement = {**body, "id": statement_id}
        _check(statement, "")
        await store(request, statement)
        return web.Response(status=204)

    return [
        web.post("/xapi/statements", post_statements),
        web.put("/xapi/statements", put_statement),
        web.get("/xapi/about", about),
        web.route("*", "/xapi/statements", not_received),
        web.route("*", "/xapi/{resource:.*}", no_such_resource),
    ]


async def about(request: web.Request) -> web.Response:
    return web.json_response({"version": [XAPI_VERSION, "1.0.0"]})


async def not_received(request: web.Request) -> web.Response:
    raise _json_error(
        web.HTTPMethodNotAllowed,
        "lrx receives statements (POST, PUT); it does not serve them back",
        method=request.method,
        allowed_methods=["POST", "PUT"],
    )


async def no_such_resource(request: web.Request) -> web.Response:
    raise _json_error(
        web.HTTPNotFound,
        f"lrx takes statements only (/xapi/statements, /xapi/about), not {request.path}",
    )


def _checked(body: object) -> list:
    """The statements of a POST body (one, or an array), each checked as xAPI requires."""
    statements = body if isinstance(body, list) else [body]
    problems: list[Problem] = []
    for index, statement in enumerate(statements):
        problems += _check(statement, f"[{index}]" if isinstance(body, list) else "", raise_=False)
    if problems:
        raise InvalidInput(problems)
    return statements


def _check(statement: object, path: str, *, raise_: bool = True) -> list[Problem]:
    """What xAPI requires of any statement, whatever lrx makes of it."""
    where = f"{path}." if path else ""
    problems = []
    if not isinstance(statement, dict):
        problems.append(Problem(path, "a statement must be an object"))
    else:
        for field in ("actor", "verb", "object"):
            if not isinstance(statement.get(field), dict):
                problems.append(Problem(f"{where}{field}", "required, an object"))
        verb = statement.get("verb")
        if isinstance(verb, dict) and not isinstance(verb.get("id"), str):
            problems.append(Problem(f"{where}verb.id", "required, an IRI"))
        if "id" in statement and not (
            isinstance(statement["id"], str) and UUID_TEXT.fullmatch(statement["id"])
        ):
            problems.append(Problem(f"{where}id", "must be a UUID"))
    if problems and raise_:
        raise InvalidInput(problems)
    return problems


def _json_error(kind: type[web.HTTPException], message: str, **extra: object) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json", **extra)
