"""The CMaRS push API client: posts one batch; turns the answer into results or errors."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson

from connectors.cmars.contract import BATCHES_PATH, RecordResult, parse_batch_result
from connectors.cmars.errors import AuthRefused, BatchRefused, BatchTooLarge, TransientFailure
from connectors.cmars.retry import parse_retry_after

__all__ = ["CmarsClient"]

log = logging.getLogger(__name__)


class CmarsClient:
    """Owns one aiohttp ClientSession; `async with` opens and closes it."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.url = base_url.rstrip("/") + BATCHES_PATH
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def stop(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> CmarsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def post_batch(
        self, batch_id: str, body: bytes, record_ids: list[str]
    ) -> dict[str, RecordResult]:
        """Each record's result, or a CmarsError saying what to do with the batch."""
        if self._session is None:
            raise RuntimeError("CmarsClient.post_batch before start()")
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": batch_id,
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                payload = await response.read()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise TransientFailure(f"no answer from {self.url} in time") from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError) as error:
            raise TransientFailure(f"{type(error).__name__}: {error}") from None
        if status == 200:
            return parse_batch_result(payload, record_ids)
        message = _message(payload) or f"HTTP {status}"
        if status in (401, 403):
            raise AuthRefused(message, status)
        if status in (400, 422):
            raise BatchRefused(message, status)
        if status == 413:
            raise BatchTooLarge(message, status)
        # 429, 5xx and anything the contract does not name: transient, retried.
        raise TransientFailure(message, status, retry_after)


def _message(payload: bytes) -> str:
    """The contract's Error.message, or the start of whatever text came back."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:300].decode(errors="replace")
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        errors = document.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors[:5])
            return f"{document['message']} ({details})"
        return document["message"]
    return payload[:300].decode(errors="replace")
