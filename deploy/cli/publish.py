"""`lrx publish`: load LMS completions from a JSON Lines file straight into Kafka."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click

from connectors.lms.formats import FORMATS, LmsContext, map_item
from connectors.lms.problems import InvalidInput, Problem
from deploy.settings import Settings
from deploy.wiring import ingest_publisher
from streams.kafka.errors import KafkaUnavailable

CHUNK = 2000


@click.command("publish")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(FORMATS)), required=True,
    help="lrx: our LearningRecord JSON; moodle: Moodle event data; xapi: xAPI statements.",
)  # fmt: skip
@click.option("--site", required=True, help="The hospital site the records belong to.")
@click.option("--dry-run", is_flag=True, help="Check every line; publish nothing.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def command(settings: Settings, fmt: str, site: str, dry_run: bool, file: Path) -> None:
    """Publish a JSON Lines FILE of completions to lms.learning-records.

    Uses the same mappings as the gateway, so each completion gets the same
    record id either way. Each rejected line is reported with its line number
    and reason; good lines are still published. Exits 1 if any line was
    rejected, 2 if Kafka did not acknowledge the writes.
    """
    context = LmsContext(site, settings.site_url_map())
    try:
        accepted, ignored, rejected = asyncio.run(_publish(settings, fmt, context, file, dry_run))
    except KafkaUnavailable as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(2) from None
    verb = "would publish" if dry_run else "published"
    click.echo(f"{verb} {accepted}, ignored {ignored} (no completion), rejected {rejected}")
    if rejected:
        raise SystemExit(1)


async def _publish(
    settings: Settings, fmt: str, context: LmsContext, file: Path, dry_run: bool
) -> tuple[int, int, int]:
    accepted = ignored = rejected = 0
    publisher = ingest_publisher(settings)
    if not dry_run:
        await publisher.start()
    try:
        chunk: list[dict] = []
        with (
            file.open(encoding="utf-8") as lines,
            click.progressbar(length=file.stat().st_size, label=f"{file.name}", file=None) as bar,
        ):
            for number, line in enumerate(lines, start=1):
                bar.update(len(line.encode()))
                if not line.strip():
                    continue
                try:
                    record = map_item(fmt, _json_line(line), context, datetime.now(UTC))
                except InvalidInput as error:
                    rejected += 1
                    click.echo(f"line {number}: {error}", err=True)
                    continue
                if record is None:
                    ignored += 1
                    continue
                accepted += 1
                chunk.append(record)
                if len(chunk) >= CHUNK and not dry_run:
                    await publisher.publish_records(chunk)
                    chunk = []
        if chunk and not dry_run:
            await publisher.publish_records(chunk)
    finally:
        await publisher.stop()
    return accepted, ignored, rejected


def _json_line(line: str) -> object:
    try:
        return json.loads(line)
    except ValueError as error:
        raise InvalidInput([Problem("", f"not valid JSON: {error}")]) from None
    except RecursionError:
        raise InvalidInput([Problem("", "JSON nests too deeply")]) from None
