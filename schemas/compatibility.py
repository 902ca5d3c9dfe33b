"""Schema evolution: can the current schema of each message read every committed version?

The rules are the Avro specification's schema resolution rules, applied with
the committed version as writer and the current schema as reader. Each problem
names the message, the version and the field, so that `lrx schemas check`
points at the change that broke compatibility.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.codec import HISTORY_DIR, Schema, fingerprint_of, history_path

__all__ = [
    "Incompatibility",
    "resolution_problems",
    "check_compatibility",
    "unrecorded_versions",
    "record_versions",
]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "enum", "fixed", "error"})
# Writer type -> reader types it may be promoted to (Avro spec, "Schema Resolution").
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason the current schema of a message cannot read a committed version."""

    message: str
    version: int | None  # None: a problem with the history itself, not one version
    field: str  # dotted path inside the message; empty for the whole message
    problem: str

    def __str__(self) -> str:
        where = self.message + (f" v{self.version}" if self.version is not None else "")
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.problem}"


def _named_types(schema: Schema, namespace: str | None = None) -> Iterator[tuple[str, dict]]:
    """(full name, definition) of every named type defined inside schema."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED:
            name = schema["name"]
            ns = schema.get("namespace", namespace)
            full = name if "." in name or not ns else f"{ns}.{name}"
            yield full, schema
            namespace = full.rpartition(".")[0] or None
            for f in schema.get("fields", ()):
                yield from _named_types(f["type"], namespace)
        elif kind == "array":
            yield from _named_types(schema["items"], namespace)
        elif kind == "map":
            yield from _named_types(schema["values"], namespace)
        elif isinstance(kind, dict | list):
            yield from _named_types(kind, namespace)


class _Resolver:
    def __init__(self, writer: Schema, reader: Schema) -> None:
        self.writer_types = dict(_named_types(writer))
        self.reader_types = dict(_named_types(reader))
        self.in_progress: set[tuple[str, str]] = set()

    @staticmethod
    def _lookup(schema: Schema, types: Mapping[str, dict]) -> Schema:
        while True:
            if isinstance(schema, str) and schema not in _PRIMITIVES:
                matches = [
                    d for full, d in types.items() if full == schema or full.endswith("." + schema)
                ]
                if not matches:
                    raise ValueError(f"unknown type {schema!r}")
                schema = matches[0]
            elif isinstance(schema, dict) and not isinstance(schema.get("type"), str):
                schema = schema["type"]
            elif isinstance(schema, dict) and schema["type"] not in _NAMED | {"array", "map"}:
                if schema["type"] in _PRIMITIVES:
                    return schema["type"]
                schema = schema["type"]
            else:
                return schema

    def problems(self, writer: Schema, reader: Schema, path: str) -> list[tuple[str, str]]:
        # The spec's resolution ignores logical types, but reading epoch millis as micros
        # (or a uuid as free text) would silently change what the data means.
        w_logical, r_logical = _logical_type(writer), _logical_type(reader)
        if w_logical != r_logical and not isinstance(writer, list) and not isinstance(reader, list):
            return [(path, f"logical type changed from {w_logical} to {r_logical}")]
        w = self._lookup(writer, self.writer_types)
        r = self._lookup(reader, self.reader_types)
        if isinstance(w, list):
            found = []
            for branch in w:
                for branch_path, problem in self.problems(branch, r, path):
                    found.append(
                        (branch_path, f"writer union branch {_describe(branch)}: {problem}")
                    )
            return found
        if isinstance(r, list):
            for branch in r:
                if not self.problems(writer, branch, path):
                    return []
            return [(path, f"{_describe(w)} fits no branch of the reader union {_describe(r)}")]
        w_kind = w if isinstance(w, str) else w["type"]
        r_kind = r if isinstance(r, str) else r["type"]
        if w_kind in _PRIMITIVES or r_kind in _PRIMITIVES:
            if w_kind == r_kind or r_kind in _PROMOTIONS.get(w_kind, ()):
                return []
            return [(path, f"type changed from {_describe(w)} to {_describe(r)}")]
        if w_kind != r_kind:
            return [(path, f"type changed from {_describe(w)} to {_describe(r)}")]
        if w_kind == "array":
            return self.problems(w["items"], r["items"], f"{path}[]")
        if w_kind == "map":
            return self.problems(w["values"], r["values"], f"{path}{{}}")
        w_name, r_name = _short(w["name"]), _short(r["name"])
        aliases = {_short(a) for a in r.get("aliases", ())}
        if w_name != r_name and w_name not in aliases:
            return [(path, f"named type {w_name} was renamed to {r_name} without an alias")]
        if w_kind == "fixed":
            if w["size"] != r["size"]:
                return [(path, f"fixed {r_name} changed size from {w['size']} to {r['size']}")]
            return []
        if w_kind == "enum":
            removed = [s for s in w["symbols"] if s not in r["symbols"]]
            if removed and "default" not in r:
                return [
                    (path, f"enum {r_name} lost symbol(s) {', '.join(removed)} and has no default")
                ]
            return []
        return self._record_problems(w, r, path)

    def _record_problems(self, w: dict, r: dict, path: str) -> list[tuple[str, str]]:
        key = (w["name"], r["name"])
        if key in self.in_progress:  # a recursive type: already being checked further up
            return []
        self.in_progress.add(key)
        writer_fields = {f["name"]: f for f in w["fields"]}
        found: list[tuple[str, str]] = []
        for f in r["fields"]:
            field_path = f"{path}.{f['name']}" if path else f["name"]
            names = [f["name"], *f.get("aliases", ())]
            written = next((writer_fields[n] for n in names if n in writer_fields), None)
            if written is None:
                if "default" not in f:
                    found.append((field_path, "is not in the writer schema and has no default"))
                continue
            found.extend(self.problems(written["type"], f["type"], field_path))
        self.in_progress.discard(key)
        return found


def _logical_type(schema: Schema) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _describe(schema: Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(b) for b in schema) + "]"
    kind = schema.get("type")
    if kind in _NAMED:
        return f"{kind} {_short(schema['name'])}"
    if kind == "array":
        return f"array<{_describe(schema['items'])}>"
    if kind == "map":
        return f"map<{_describe(schema['values'])}>"
    return _describe(kind)


def resolution_problems(writer: Schema, reader: Schema) -> list[tuple[str, str]]:
    """(field path, problem) for every way reader fails to read data written with writer."""
    return _Resolver(writer, reader).problems(writer, reader, "")


def check_compatibility(
    contracts: Mapping[str, Schema], history: Mapping[str, Mapping[int, Schema]]
) -> list[Incompatibility]:
    """Every incompatibility between a current schema and a committed version of it."""
    found: list[Incompatibility] = []
    for name in sorted(history):
        if name not in contracts:
            found.append(Incompatibility(name, None, "", "has history but no current schema"))
            continue
        seen: dict[bytes, int] = {}
        for version, writer in sorted(history[name].items()):
            try:
                fp = fingerprint_of(writer)
            except Exception as error:  # fastavro raises several types for a bad schema
                found.append(Incompatibility(name, version, "", f"is not a valid schema: {error}"))
                continue
            if fp in seen:
                found.append(
                    Incompatibility(name, version, "", f"is the same schema as v{seen[fp]}")
                )
            seen[fp] = version
            writer_name = writer.get("name", "") if isinstance(writer, dict) else ""
            if _short(writer_name) != name:
                found.append(
                    Incompatibility(name, version, "", f"defines {writer_name!r}, not {name}")
                )
                continue
            for field, problem in resolution_problems(writer, contracts[name]):
                found.append(Incompatibility(name, version, field, problem))
    return found


def unrecorded_versions(
    contracts: Mapping[str, Schema], history: Mapping[str, Mapping[int, Schema]]
) -> dict[str, int]:
    """{message: next version} for each current schema not yet committed to history."""
    pending = {}
    for name, schema in sorted(contracts.items()):
        versions = history.get(name, {})
        fingerprints = {fingerprint_of(s) for s in versions.values()}
        if fingerprint_of(schema) not in fingerprints:
            pending[name] = max(versions, default=0) + 1
    return pending


def record_versions(
    contracts: Mapping[str, Any],
    pending: Mapping[str, int],
    history_dir: Path = HISTORY_DIR,
) -> list[Path]:
    """Write each pending current schema to history as its next version; return the files."""
    written = []
    for name, version in sorted(pending.items()):
        path = history_path(name, version, history_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(contracts[name], indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
