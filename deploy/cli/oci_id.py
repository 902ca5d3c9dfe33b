"""`lrx oci-id`: check OCI ID values the way the pipeline will read them."""

from __future__ import annotations

import json

import click

from deploy.settings import Settings
from streams.rules.colleges import CollegeRegistry, CollegeRegistryError
from streams.rules.oci_id import OciIdError, display_form, parse_oci_id


@click.group("oci-id")
def command() -> None:
    """OCI IDs: the user profile field that tells CMaRS who completed a course."""


def _registry(settings: Settings) -> CollegeRegistry:
    try:
        return CollegeRegistry.load(settings.colleges_file)
    except CollegeRegistryError as error:
        raise click.ClickException(str(error)) from None


@command.command()
@click.argument("values", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per value.")
@click.pass_obj
def check(settings: Settings, values: tuple[str, ...], as_json: bool) -> None:
    """Print the canonical form of each VALUE, or why it is not a usable OCI ID.

    Accepts what a profile or a CSV upload may hold, e.g. CA-ON-CPSO-12345 or
    "College of Physicians and Surgeons of Ontario | 12345" (quote values with
    spaces). Error codes: empty, unknown_college, college_not_enabled (CMaRS would
    answer WS400), malformed_licence, trailing_garbage. Exits 1 if any value is bad.
    The colleges come from LRX_COLLEGES_FILE.
    """
    colleges = _registry(settings)
    bad = 0
    for value in values:
        try:
            oci_id = parse_oci_id(value, colleges)
        except OciIdError as error:
            bad += 1
            if as_json:
                click.echo(json.dumps({"value": value, "ok": False, "code": error.code,
                                       "message": str(error)}))  # fmt: skip
            else:
                click.echo(f"{value!r}: {error.code}: {error}")
            continue
        if as_json:
            click.echo(json.dumps({"value": value, "ok": True, **oci_id.as_record(),
                                   "display": display_form(oci_id, colleges)}))  # fmt: skip
        else:
            click.echo(f"{value!r}: {oci_id.canonical}")
    if bad:
        raise SystemExit(1)


@command.command()
@click.pass_obj
def colleges(settings: Settings) -> None:
    """List the colleges in LRX_COLLEGES_FILE and whether CMaRS accepts them."""
    for college in _registry(settings):
        state = "enabled" if college.enabled else "not enabled (WS400)"
        click.echo(f"{college.code:<14} {state:<20} {college.name}")
