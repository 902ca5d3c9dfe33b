"""The CMaRS contract, connectors/cmars/openapi.yaml, and a validator for each of its schemas."""

from __future__ import annotations

from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.cmars.contract import CONTRACT_FILE


def load_contract() -> dict[str, Any]:
    """connectors/cmars/openapi.yaml, parsed."""
    return yaml.safe_load(CONTRACT_FILE.read_text())


def validator(contract: dict[str, Any], schema: str) -> Draft202012Validator:
    """Validates a document against components/schemas/`schema` of the contract."""
    registry = Registry().with_resource(
        "urn:cmars", Resource.from_contents(contract, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"urn:cmars#/components/schemas/{schema}"}, registry=registry
    )
