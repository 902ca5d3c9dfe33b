"""The contracts: message schemas from schemas/avro and schemas/history, and fingerprints.

A contract file holds one named type; a message's schema has the named types it
uses inlined at first use, as Parsing Canonical Form requires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.codec.errors import ContractError

__all__ = [
    "MESSAGES",
    "NAMESPACE",
    "AVRO_DIR",
    "HISTORY_DIR",
    "Schema",
    "load_contracts",
    "load_history",
    "fingerprint_of",
    "history_path",
]

NAMESPACE = "ca.dualcode.lrx"
AVRO_DIR = Path(__file__).resolve().parent.parent / "avro"
HISTORY_DIR = Path(__file__).resolve().parent.parent / "history"

# The messages that travel on topics. Other .avsc files (CourseRef, OciId, the
# enums, ...) are named types those messages share.
MESSAGES = (
    "LearningRecord",
    "UserProfile",
    "CourseRecipients",
    "RoutedRecord",
    "IneligibleRecord",
    "DeliveryReceipt",
    "DeadLetter",
)

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "enum", "fixed", "error"})
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")

Schema = Any  # Avro schema as JSON: a str, list or dict


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _read_json(path: Path) -> Schema:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ContractError(f"{path}: cannot read schema: {error}") from None


def _expand(schema: Schema, library: Mapping[str, Schema], namespace: str | None) -> Schema:
    """Inline every named type at its first use, as Parsing Canonical Form requires."""
    defined: set[str] = set()

    def walk(node: Schema, ns: str | None) -> Schema:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            full = _fullname(node, ns)
            if full in defined:
                return full
            if full not in library:
                raise ContractError(f"unknown type {full!r}")
            return walk(library[full], None)
        if isinstance(node, list):
            return [walk(branch, ns) for branch in node]
        node = dict(node)
        kind = node["type"]
        if kind in _NAMED:
            full = _fullname(node["name"], node.get("namespace", ns))
            defined.add(full)
            ns = full.rpartition(".")[0] or None
            node["name"], node["namespace"] = full.rpartition(".")[2], ns
            if kind in ("record", "error"):
                node["fields"] = [{**f, "type": walk(f["type"], ns)} for f in node["fields"]]
        elif kind == "array":
            node["items"] = walk(node["items"], ns)
        elif kind == "map":
            node["values"] = walk(node["values"], ns)
        elif kind not in _PRIMITIVES:
            node["type"] = walk(kind, ns)
        return node

    return walk(schema, namespace)


def load_contracts(avro_dir: Path = AVRO_DIR) -> dict[str, Schema]:
    """Every message schema in avro_dir, with the named types it uses inlined."""
    library: dict[str, Schema] = {}
    for path in sorted(avro_dir.glob("*.avsc")):
        schema = _read_json(path)
        if not isinstance(schema, dict) or "name" not in schema:
            raise ContractError(f"{path}: a contract file must hold one named type")
        full = _fullname(schema["name"], schema.get("namespace"))
        if full.rpartition(".")[2] != path.stem:
            raise ContractError(f"{path}: defines {full}, expected a type named {path.stem}")
        library[full] = schema
    contracts = {}
    for name in MESSAGES:
        full = f"{NAMESPACE}.{name}"
        if full not in library:
            raise ContractError(f"{avro_dir}: no {name}.avsc")
        try:
            contracts[name] = _expand(library[full], library, NAMESPACE)
        except ContractError as error:
            raise ContractError(f"{avro_dir / (name + '.avsc')}: {error}") from None
    return contracts


def history_path(name: str, version: int, history_dir: Path = HISTORY_DIR) -> Path:
    return history_dir / name / f"v{version}.avsc"


def load_history(history_dir: Path = HISTORY_DIR) -> dict[str, dict[int, Schema]]:
    """Every committed version of every message: {name: {version: expanded schema}}."""
    history: dict[str, dict[int, Schema]] = {}
    if not history_dir.is_dir():
        return history
    for folder in sorted(p for p in history_dir.iterdir() if p.is_dir()):
        versions: dict[int, Schema] = {}
        for path in sorted(folder.glob("*.avsc")):
            match = _VERSION_FILE.match(path.name)
            if not match:
                raise ContractError(f"{path}: history files are named v<N>.avsc")
            versions[int(match.group(1))] = _read_json(path)
        if versions:
            history[folder.name] = versions
    return history


def fingerprint_of(schema: Schema) -> bytes:
    """The 8 header bytes: CRC-64-AVRO of the Parsing Canonical Form, little-endian."""
    # fastavro renders the CRC-64-AVRO as the hex of its little-endian bytes, which is
    # exactly the single-object header (tests check it against the spec's algorithm).
    return bytes.fromhex(
        fingerprint(to_parsing_canonical_form(parse_schema(schema)), "CRC-64-AVRO")
    )


def _without_uuid_logical_type(schema: Schema) -> Schema:
    """The same schema with uuid strings left plain: decoded ids stay str, not uuid.UUID."""
    # fastavro applies the writer's logical type when reading; the bytes are identical.
    if isinstance(schema, list):
        return [_without_uuid_logical_type(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("logicalType") == "uuid":
        return schema["type"]
    node = dict(schema)
    for key in ("items", "values", "type"):
        if key in node and not isinstance(node[key], str):
            node[key] = _without_uuid_logical_type(node[key])
    if "fields" in node:
        node["fields"] = [
            {**f, "type": _without_uuid_logical_type(f["type"])} for f in node["fields"]
        ]
    return node
