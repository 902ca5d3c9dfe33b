"""`lrx demo`: feed a running `lrx up` realistic traffic and account for every record."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import click

from deploy.demo import account_for, plan_traffic, send_traffic, tally
from deploy.settings import Settings
from streams.rules.colleges import CollegeRegistry
from streams.rules.reporting_period import ReportingCalendar


@click.command("demo")
@click.option("--practitioners", default=200, show_default=True, help="Users to create.")
@click.option("--courses", default=8, show_default=True, help="Courses to subscribe.")
@click.option("--seed", default=7, show_default=True, help="Random seed: same seed, same traffic.")
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    help="Seconds to wait for every record to settle.",
)
@click.pass_obj
def command(
    settings: Settings, practitioners: int, courses: int, seed: int, timeout: float
) -> None:
    """Send realistic LMS traffic through the gateway of a running `lrx up`.

    Practitioners across the colleges (some OCI IDs missing, malformed or of a
    college CMaRS does not support), courses subscribed to `cmars` or its alias
    `tahsn` (one to nobody), required activities (some completed after the
    course), partial and failed attempts, equivalencies, supporting
    documentation, records from last period, a republished batch, and profiles
    that arrive after their records.

    Then it waits until every record sent is delivered (as the CMaRS emulator
    confirms), pending, ineligible or dead-lettered, and prints the table.
    Exits 1 if any record is unaccounted for or in two states at once.
    """
    token, site = next(iter(settings.site_of_token().items()))
    calendar = ReportingCalendar.parse(settings.period_start, settings.period_timezone)
    colleges = CollegeRegistry.load(settings.colleges_file)
    plan = plan_traffic(site, practitioners, courses, datetime.now(UTC), calendar, colleges, seed)
    sent = asyncio.run(send_traffic(settings, plan, token, click.echo))
    click.echo(f"{len(sent)} distinct learning records sent; waiting for them to settle...")
    deadline = time.monotonic() + timeout
    while True:
        outcomes = asyncio.run(account_for(settings, sent))
        rows, unaccounted, twice = tally(outcomes, sent)
        if (unaccounted == 0 and not twice) or time.monotonic() > deadline:
            break
        time.sleep(2)
    width = max(len(label) for label, _ in rows)
    click.echo(f"\n{'outcome':<{width}}  records")
    for label, count in rows:
        click.echo(f"{label:<{width}}  {count:>7}")
    if unaccounted:
        click.echo(f"{'still in flight (unaccounted)':<{width}}  {unaccounted:>7}")
    total = sum(count for _, count in rows)
    click.echo(f"{'total':<{width}}  {total:>7}   (sent: {len(sent)})")
    if twice:
        click.echo(f"in more than one state: {', '.join(twice[:10])}", err=True)
    if unaccounted or twice or total != len(sent):
        raise SystemExit(1)
    click.echo("every record is accounted for.")
