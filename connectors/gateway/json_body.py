"""The gateway's one reader of a JSON request body: every failure is a 400 that says why."""

from __future__ import annotations

import json

from aiohttp import web

from connectors.lms.problems import InvalidInput, Problem

__all__ = ["read_json"]


async def read_json(request: web.Request) -> object:
    if request.content_type != "application/json":
        raise InvalidInput([Problem("", "Content-Type must be application/json")])
    body = await request.read()  # raises 413 past client_max_size
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput([Problem("", f"the body is not valid JSON: {error}")]) from None
    except RecursionError:  # e.g. [[[[...]]]] 100,000 deep
        raise InvalidInput([Problem("", "the body nests arrays or objects too deeply")]) from None
