"""The folders are the layers: imports point inward (README, "Layout"). The tests have
layers too: kinds in folders, support code in tests/support/ (README, "Tests")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
KINDS = ("unit", "integration", "e2e")


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


# --- the tests: tests/unit, tests/integration, tests/e2e, their support code in tests/support


def modules_of_tests_under(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (TESTS / folder).rglob("test_*.py"))


def test_every_test_module_is_in_the_folder_of_its_kind():
    misplaced = [
        relative(p) for p in TESTS.rglob("test_*.py") if p.relative_to(TESTS).parts[0] not in KINDS
    ]
    assert not misplaced, f"not in tests/unit, tests/integration or tests/e2e: {misplaced}"


def test_test_code_imports_from_tests_only_its_support():
    """No test module imports another (nor conftest): what two share is in tests/support/."""
    offending = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)):
            offending.append(f"{relative(path)}: a relative import")
        for module in sorted(imported_modules(path)):
            if module.split(".")[0] == "tests" and module.split(".")[:2] != ["tests", "support"]:
                offending.append(f"{relative(path)} imports {module}")
    assert not offending, "move what they share to tests/support/:\n" + "\n".join(offending)


# A unit test does no I/O beyond reading files: no broker, process, socket, HTTP client or
# server. aiokafka's exception and data types are values (the fakes of tests/unit raise and
# take them); its clients and admin are not.
NO_IO_IN_UNIT = (
    "subprocess", "socket", "aiokafka", "aiohttp", "requests", "urllib.request", "http.server",
    "http.client",
)  # fmt: skip
AIOKAFKA_VALUES = {"aiokafka.errors", "aiokafka.structs"}
AIOKAFKA_VALUE_NAMES = {"TopicPartition", "ConsumerRecord", "OffsetAndMetadata"}
BROKER_FIXTURES = {"settings", "fresh_broker"}


def does_io(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in NO_IO_IN_UNIT)


def io_imports(path: Path) -> set[str]:
    """What `path` imports that does I/O, as `module` or `module.name`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if does_io(alias.name)}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            module = node.module
            names = {alias.name for alias in node.names}
            if module == "aiokafka":
                names -= AIOKAFKA_VALUE_NAMES
            elif module in AIOKAFKA_VALUES:
                names = set()
            if does_io(module) or any(does_io(f"{module}.{name}") for name in names):
                found |= {f"{module}.{name}" for name in names}
    return found


def support_modules_of(path: Path, seen: set[Path] | None = None) -> set[Path]:
    """The tests/support modules `path` imports, directly or through one another."""
    seen = set() if seen is None else seen
    for module in imported_modules(path):
        if module.startswith("tests.support."):
            support = ROOT / (module.replace(".", "/") + ".py")
            if support.exists() and support not in seen:
                seen.add(support)
                support_modules_of(support, seen)
    return seen


def is_kafka_mark(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "kafka"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
    )


def test_unit_tests_do_no_io_and_need_no_broker():
    offending = []
    for path in modules_of_tests_under("unit"):
        for module in sorted({path} | support_modules_of(path)):
            if io_imports(module):
                via = "" if module == path else f" (through {relative(path)})"
                offending.append(f"{relative(module)}{via} imports {sorted(io_imports(module))}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(is_kafka_mark(node) for node in ast.walk(tree)):
            offending.append(f"{relative(path)} marks tests kafka")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                wanted = {a.arg for a in node.args.args + node.args.kwonlyargs} & BROKER_FIXTURES
                if wanted:
                    offending.append(f"{relative(path)}: {node.name} takes {sorted(wanted)}")
    assert not offending, "not unit tests:\n" + "\n".join(offending)
