"""What the codec raises: a malformed contract, or bytes and records that do not fit."""

from __future__ import annotations

from schemas.errors import DataError, LrxError

__all__ = ["ContractError", "CodecError"]


class ContractError(LrxError, ValueError):
    """An .avsc file or a history folder is malformed; the message names the file."""


class CodecError(DataError):
    """Bytes that are not a message we know, or a record that does not fit its schema.

    `kind` is one of KINDS; `field` names the offending field for invalid_record.
    """

    BAD_MARKER = "bad_marker"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    TRUNCATED = "truncated"
    INVALID_RECORD = "invalid_record"
    WRONG_SCHEMA = "wrong_schema"
    KINDS = frozenset({BAD_MARKER, UNKNOWN_FINGERPRINT, TRUNCATED, INVALID_RECORD, WRONG_SCHEMA})

    def __init__(self, kind: str, message: str, *, field: str | None = None) -> None:
        assert kind in self.KINDS, kind
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.field = field
