"""The one codec of lrx: Avro single-object encoding of the contracts in schemas/avro."""

from schemas.codec.checks import UUID_TEXT
from schemas.codec.codec import HEADER_SIZE, MARKER, Codec
from schemas.codec.contracts import (
    AVRO_DIR,
    HISTORY_DIR,
    MESSAGES,
    NAMESPACE,
    Schema,
    fingerprint_of,
    history_path,
    load_contracts,
    load_history,
)
from schemas.codec.errors import CodecError, ContractError
from schemas.codec.splicer import Splicer

__all__ = [
    "Codec",
    "CodecError",
    "Splicer",
    "ContractError",
    "MESSAGES",
    "NAMESPACE",
    "AVRO_DIR",
    "HISTORY_DIR",
    "MARKER",
    "HEADER_SIZE",
    "Schema",
    "UUID_TEXT",
    "load_contracts",
    "load_history",
    "fingerprint_of",
    "history_path",
]
