"""The failures of a CMaRS delivery. `CmarsError` is the root; each kind says what to do next."""

from __future__ import annotations

from schemas.errors import LrxError

__all__ = [
    "CmarsError",
    "TransientFailure",
    "AuthRefused",
    "BatchRefused",
    "BatchTooLarge",
]


class CmarsError(LrxError):
    """CMaRS did not take a batch. The subclass decides between retry, split and dead letter."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientFailure(CmarsError):
    """Timeouts, connection errors, 5xx, 429, or an answer we could not read: retry the batch.

    `retry_after` is the wait CMaRS asked for (Retry-After), in seconds, if it asked.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class AuthRefused(CmarsError):
    """401 or 403: our credential is refused. Pause and retry slowly; never dead-letter."""


class BatchRefused(CmarsError):
    """400 or 422: CMaRS refused the batch as malformed; some record in it is bad."""


class BatchTooLarge(CmarsError):
    """413: the batch is too large for CMaRS; send it in smaller parts."""
