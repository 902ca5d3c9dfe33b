"""The root of lrx's errors, in the innermost layer so that every package can derive from it.

`LrxError` is what lrx raises on purpose; the CLI turns one into a one-line
message. `DataError` is the part of it that is about one message or record
(bytes that do not decode, a field that breaks a contract), never about the
infrastructure: the worker dead-letters a DataError and crashes on anything else.
"""

from __future__ import annotations

__all__ = ["LrxError", "DataError"]


class LrxError(Exception):
    """An error lrx raises on purpose, with a message that says what is wrong."""


class DataError(LrxError, ValueError):
    """One message or record lrx cannot take; retrying it will not help."""
