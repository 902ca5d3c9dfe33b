"""The folders are the layers: imports point inward (README, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def modules_under(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path",
    modules_under("schemas", "streams", "connectors"),
    ids=relative,
)
def test_nothing_below_deploy_imports_deploy(path: Path):
    offending = {m for m in imported_modules(path) if m == "deploy" or m.startswith("deploy.")}
    assert not offending, f"{relative(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", modules_under("streams/rules"), ids=relative)
def test_the_rules_import_only_schemas_and_each_other(path: Path):
    for module in imported_modules(path):
        top = module.split(".")[0]
        assert top not in {"faust", "aiokafka", "aiohttp", "connectors", "deploy"}, module
        if top == "streams":
            assert module.startswith("streams.rules"), module


def test_schemas_import_no_other_layer():
    for path in modules_under("schemas"):
        for module in imported_modules(path):
            assert module.split(".")[0] not in {"streams", "connectors", "deploy"}, (path, module)
