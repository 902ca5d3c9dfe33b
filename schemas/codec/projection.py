"""Reading only some fields of an Avro binary body, stepping over the rest without building them.

fastavro builds every field of a message, and resolving into a reader schema
that drops fields is slower still. A consumer that needs a handful of a
message's fields (the CMaRS sink needs nine of RoutedRecord's twenty-odd) reads
them through a `BodyReader`, which compiles the writer schema once into one
straight-line Python function: no per-field calls, no schema walking per
message. It returns the values fastavro would for those fields (timestamps as
aware UTC datetimes, uuids as str, enums as their symbol) and raises ValueError,
IndexError or struct.error on bytes it cannot read. Skipped fields are stepped
over, not checked: their strings are not decoded. The codec (codec.py) wraps it and
answers any failure with its full, checking decode.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec.contracts import _NAMED, _PRIMITIVES, Schema, _fullname

__all__ = ["BodyReader", "wanted_tree"]

Wanted = dict[str, "Wanted | None"]  # field name -> sub-fields wanted, None for all of it


def wanted_tree(paths: Iterable[str]) -> Wanted:
    """{"a": {"b": None}, "c": None} for the dotted paths "a.b" and "c"."""
    tree: Wanted = {}
    for path in paths:
        node = tree
        *parents, leaf = path.split(".")
        for name in parents:
            child = node.setdefault(name, {})
            if child is None:
                break  # an ancestor is wanted whole
            node = child
        else:
            node[leaf] = None
    return tree


def _picked(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The wanted fields of a whole decoded record, as BodyReader.read returns them."""
    return {
        name: record[name] if sub is None else _picked(record[name], sub)
        for name, sub in wanted.items()
    }


def _varint(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte (with its continuation bit) was `first`."""
    n = first & 0x7F
    shift = 7
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, pos
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


class _Source:
    """The lines of the generated function, and the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._count = 0

    def name(self, prefix: str = "v") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: Any) -> str:
        name = self.name("c")
        self.constants[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


class BodyReader:
    """Reads the `paths` (dotted field names) of bodies written with `schema`.

    `schema` is an expanded schema (named types inlined at first use, later uses
    by full name), as the codec keeps them. Paths go through records only;
    a path that names no field, or a recursive type, is a ValueError here.
    """

    def __init__(self, schema: Schema, paths: Iterable[str]) -> None:
        self._named: dict[str, Schema] = {}
        self._inside: list[str] = []  # named types being generated, to refuse recursion
        self._register(schema, None)
        source = _Source()
        source.add(0, "def read(data, pos):")
        source.add(1, "size = len(data)")
        result = self._project(source, 1, schema, wanted_tree(paths), "")
        source.add(1, "if pos != size:")
        source.add(2, 'raise ValueError(f"the body ends at byte {pos} of {size}")')
        source.add(1, f"return {result}")
        scope: dict[str, Any] = {
            "_varint": _varint,
            "_epoch": datetime(1970, 1, 1, tzinfo=UTC),
            "_timedelta": timedelta,
            "_float": struct.Struct("<f").unpack_from,
            "_double": struct.Struct("<d").unpack_from,
            **source.constants,
        }
        exec(compile("\n".join(source.lines), f"<BodyReader {schema.get('name')}>", "exec"), scope)
        self.source = "\n".join(source.lines)
        self._read: Callable[[bytes, int], dict[str, Any]] = scope["read"]

    def read(self, data: bytes, start: int = 0) -> dict[str, Any]:
        """The wanted fields of the body at data[start:], which must end where data ends."""
        return self._read(data, start)

    # --- generating the function

    def _register(self, node: Schema, namespace: str | None) -> None:
        """Learn every named type's definition, so that later uses by name resolve."""
        if isinstance(node, list):
            for branch in node:
                self._register(branch, namespace)
        elif isinstance(node, dict):
            kind = node["type"]
            if kind in _NAMED:
                full = _fullname(node["name"], node.get("namespace", namespace))
                self._named.setdefault(full, node)
                namespace = full.rpartition(".")[0] or None
                for field in node.get("fields", ()):
                    self._register(field["type"], namespace)
            elif kind == "array":
                self._register(node["items"], namespace)
            elif kind == "map":
                self._register(node["values"], namespace)
            elif not isinstance(kind, str):
                self._register(kind, namespace)

    def _resolve(self, node: Schema) -> Schema:
        if isinstance(node, str) and node not in _PRIMITIVES:
            if node not in self._named:
                raise ValueError(f"unknown type {node!r}")
            return self._named[node]
        if isinstance(node, dict) and not isinstance(node["type"], str):
            return self._resolve(node["type"])
        return node

    def _project(self, src: _Source, ind: int, node: Schema, wanted: Wanted, path: str) -> str:
        """Code that reads the wanted fields of a record into a new dict; its variable."""
        node = self._resolve(node)
        if not isinstance(node, dict) or node["type"] not in ("record", "error"):
            raise ValueError(f"{path or '(message)'}: only fields of records can be picked")
        names = [field["name"] for field in node["fields"]]
        for name in wanted:
            if name not in names:
                raise ValueError(f"{path}{name}: not a field of {node['name']}")
        with self._entered(node):
            parts = []
            for field in node["fields"]:
                name, sub = field["name"], wanted.get(field["name"], False)
                if sub is False:
                    self._skip(src, ind, field["type"])
                elif sub is None:
                    parts.append(f"{name!r}: {self._read(src, ind, field['type'])}")
                else:
                    parts.append(
                        f"{name!r}: {self._project(src, ind, field['type'], sub, f'{path}{name}.')}"
                    )
        result = src.name()
        src.add(ind, f"{result} = {{{', '.join(parts)}}}")
        return result

    def _long(self, src: _Source, ind: int) -> str:
        """Code that reads one zigzag varint; its variable."""
        raw, value = src.name("b"), src.name()
        src.add(ind, f"{raw} = data[pos]")
        src.add(ind, "pos += 1")
        src.add(ind, f"if {raw} & 0x80:")
        src.add(ind + 1, f"{raw}, pos = _varint(data, pos, {raw})")
        src.add(ind, f"{value} = ({raw} >> 1) ^ -({raw} & 1)")
        return value

    def _length(self, src: _Source, ind: int) -> str:
        size = self._long(src, ind)
        src.add(ind, f"if {size} < 0 or pos + {size} > size:")
        src.add(ind + 1, 'raise ValueError("a length runs past the end of the body")')
        return size

    def _count(self, src: _Source, ind: int) -> str:
        """Code that reads an array or map block's item count (skipping its byte size)."""
        count = self._long(src, ind)
        src.add(ind, f"if {count} < 0:")
        src.add(ind + 1, f"{count} = -{count}")
        self._skip(src, ind + 1, "long")
        src.add(ind, f"if {count} > size:")
        src.add(ind + 1, 'raise ValueError("a block holds more items than the body has bytes")')
        return count

    def _index(self, src: _Source, ind: int, count: int) -> str:
        index = self._long(src, ind)
        src.add(ind, f"if not 0 <= {index} < {count}:")
        src.add(ind + 1, f'raise IndexError(f"index {{{index}}} of {count}")')
        return index

    def _read(self, src: _Source, ind: int, node: Schema) -> str:
        """Code that reads one whole value; the variable that holds it."""
        node = self._resolve(node)
        kind = node if isinstance(node, str | list) else node.get("type")
        if isinstance(node, list):
            index, value = self._index(src, ind, len(node)), src.name()
            for i, branch in enumerate(node):
                src.add(ind, f"{'if' if i == 0 else 'elif'} {index} == {i}:")
                src.add(ind + 1, f"{value} = {self._read(src, ind + 1, branch)}")
            return value
        logical = node.get("logicalType") if isinstance(node, dict) else None
        value = src.name()
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            unit = "milliseconds" if logical == "timestamp-millis" else "microseconds"
            raw = self._long(src, ind)
            src.add(ind, f"{value} = _epoch + _timedelta({unit}={raw})")
        elif logical not in (None, "uuid"):
            raise ValueError(f"logical type {logical}: not supported by the projected reader")
        elif kind == "null":
            src.add(ind, f"{value} = None")
        elif kind == "boolean":
            src.add(ind, "if data[pos] > 1:")
            src.add(ind + 1, 'raise ValueError("a boolean byte other than 0 or 1")')
            src.add(ind, f"{value} = data[pos] == 1")
            src.add(ind, "pos += 1")
        elif kind in ("int", "long"):
            return self._long(src, ind)
        elif kind in ("float", "double"):
            src.add(ind, f"{value} = _{kind}(data, pos)[0]")
            src.add(ind, f"pos += {4 if kind == 'float' else 8}")
        elif kind in ("string", "bytes"):
            length = self._length(src, ind)
            decode = ".decode()" if kind == "string" else ""
            src.add(ind, f"{value} = data[pos:pos + {length}]{decode}")
            src.add(ind, f"pos += {length}")
        elif kind == "enum":
            symbols = src.constant(tuple(node["symbols"]))
            index = self._index(src, ind, len(node["symbols"]))
            src.add(ind, f"{value} = {symbols}[{index}]")
        elif kind == "fixed":
            src.add(ind, f"{value} = data[pos:pos + {node['size']}]")
            src.add(ind, f"pos += {node['size']}")
        elif kind in ("record", "error"):
            every: Wanted = {field["name"]: None for field in node["fields"]}
            return self._project(src, ind, node, every, "")
        elif kind in ("array", "map"):
            src.add(ind, f"{value} = {'[]' if kind == 'array' else '{}'}")
            src.add(ind, "while True:")
            count = self._count(src, ind + 1)
            src.add(ind + 1, f"if not {count}:")
            src.add(ind + 2, "break")
            src.add(ind + 1, f"for _ in range({count}):")
            if kind == "array":
                item = self._read(src, ind + 2, node["items"])
                src.add(ind + 2, f"{value}.append({item})")
            else:
                key = self._read(src, ind + 2, "string")
                item = self._read(src, ind + 2, node["values"])
                src.add(ind + 2, f"{value}[{key}] = {item}")
        else:
            raise ValueError(f"{node}: not an Avro type")
        return value

    def _skip(self, src: _Source, ind: int, node: Schema) -> None:
        """Code that steps over one value."""
        node = self._resolve(node)
        kind = node if isinstance(node, str | list) else node.get("type")
        if isinstance(node, list):
            index = self._index(src, ind, len(node))
            for i, branch in enumerate(node):
                src.add(ind, f"{'if' if i == 0 else 'elif'} {index} == {i}:")
                src.add(ind + 1, "pass")
                self._skip(src, ind + 1, branch)
        elif kind == "null":
            pass
        elif kind == "boolean":
            src.add(ind, "pos += 1")
        elif kind in ("int", "long", "enum"):
            src.add(ind, "while data[pos] & 0x80:")
            src.add(ind + 1, "pos += 1")
            src.add(ind, "pos += 1")
        elif kind in ("float", "double"):
            src.add(ind, f"pos += {4 if kind == 'float' else 8}")
        elif kind in ("string", "bytes"):
            src.add(ind, f"pos += {self._length(src, ind)}")
        elif kind == "fixed":
            src.add(ind, f"pos += {node['size']}")
        elif kind in ("record", "error"):
            with self._entered(node):
                for field in node["fields"]:
                    self._skip(src, ind, field["type"])
        elif kind in ("array", "map"):
            src.add(ind, "while True:")
            count = self._count(src, ind + 1)
            src.add(ind + 1, f"if not {count}:")
            src.add(ind + 2, "break")
            src.add(ind + 1, f"for _ in range({count}):")
            src.add(ind + 2, "pass")
            if kind == "map":
                self._skip(src, ind + 2, "string")
            self._skip(src, ind + 2, node["items"] if kind == "array" else node["values"])
        else:
            raise ValueError(f"{node}: not an Avro type")

    def _entered(self, node: Mapping[str, Any]) -> _Entered:
        return _Entered(self._inside, _fullname(node["name"], node.get("namespace")))


class _Entered:
    """Marks a named record as being generated; entering it again would never end."""

    def __init__(self, inside: list[str], name: str) -> None:
        self.inside, self.name = inside, name

    def __enter__(self) -> None:
        if self.name in self.inside:
            raise ValueError(f"{self.name} is recursive: not supported by the projected reader")
        self.inside.append(self.name)

    def __exit__(self, *exc_info: object) -> None:
        self.inside.pop()
