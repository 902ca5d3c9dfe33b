"""`lrx users import`: set users' OCI IDs from a Moodle upload-user CSV file."""

from __future__ import annotations

import asyncio
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from aiokafka.errors import KafkaError

from connectors.lms.profile_directory import ProfileDirectory, read_profile_directory
from connectors.lms.user_import import (
    ImportPlan,
    RowProblem,
    UploadFileError,
    UserImport,
    read_upload_file,
)
from deploy.settings import Settings
from deploy.wiring import admin_publisher, kafka_connection
from schemas.codec import Codec
from streams.kafka.errors import KafkaUnavailable, TopicMissing
from streams.rules.colleges import CollegeRegistry, CollegeRegistryError

# Profiles per acknowledged write: large enough to keep the producer's batches full,
# small enough that the progress bar moves and one wait stays within the timeout.
PUBLISH_CHUNK = 5000
DELIMITERS = {"comma": ",", "semicolon": ";", "colon": ":", "tab": "\t"}
EXIT_BAD_ROWS = 1
EXIT_CANNOT_IMPORT = 2


@click.group("users")
def command() -> None:
    """LMS users: their profiles in lms.user-profiles."""


@command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--site", required=True,
    help="The hospital site the file's users belong to (usernames are unique only per site).",
)  # fmt: skip
@click.option(
    "--dry-run", is_flag=True, help="Check every row and print the report; publish nothing."
)
@click.option(
    "--encoding", default="utf-8", show_default=True,
    help="The file's text encoding, e.g. cp1252 for a CSV saved by Excel on Windows.",
)  # fmt: skip
@click.option(
    "--delimiter", type=click.Choice(sorted(DELIMITERS)), default="comma", show_default=True,
    help="The field separator, as in Moodle's upload form.",
)  # fmt: skip
@click.option(
    "--report", "report_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the problems to this CSV file (line,column,value,reason).",
)  # fmt: skip
@click.pass_obj
def import_users(
    settings: Settings,
    file: Path,
    site: str,
    dry_run: bool,
    encoding: str,
    delimiter: str,
    report_file: Path | None,
) -> None:
    """Set the OCI IDs of a site's users from Moodle's upload-user CSV FILE,
    or create the users from Moodle's user download (Bulk user actions →
    Download, CSV), whose `id` column is the Moodle user id.

    \b
    Columns: username and profile_field_ociid are required; email, firstname,
    lastname, idnumber and any others are ignored. Rows are matched to users by
    username within --site, against the profiles the LMS published to
    lms.user-profiles: a username the site has not published is a bad row.
    Each OCI ID is normalised to its canonical form (CA-ON-CPSO-12345). An OCI
    ID on two usernames of the site, in the file or among known users, is a
    duplicate; the same OCI ID at another site is the same practitioner and
    is allowed.

    \b
    The report lists every problem as: line (the header is line 1), column,
    value, reason. Good rows are published as updated UserProfiles (other
    fields kept) even when other rows are bad; bad rows never are. --dry-run
    still reads lms.user-profiles, to check the rows against the known users.

    \b
    Exit status: 0 all rows imported (or would be, with --dry-run);
    1 some rows are bad (the good ones were published);
    2 nothing was imported: the file or Kafka could not be used.
    """
    try:
        table = read_upload_file(file.read_bytes(), encoding, DELIMITERS[delimiter])
        colleges = CollegeRegistry.load(settings.colleges_file)
    except (UploadFileError, CollegeRegistryError, OSError) as error:
        _give_up(f"{file.name}: {error}" if isinstance(error, UploadFileError) else str(error))
    codec = Codec.default()
    try:
        directory = asyncio.run(
            read_profile_directory(
                kafka_connection(settings), settings.admin_kafka_timeout, codec, colleges, site
            )
        )
    except (KafkaUnavailable, TopicMissing) as error:
        _give_up(str(error))
    click.echo(f"{directory.count} known users of site {site} in lms.user-profiles")

    plan = _check_rows(table.rows, table.columns, site, directory, colleges)
    for problem in plan.problems:
        click.echo(str(problem))
    if report_file is not None:
        _write_report(report_file, plan.problems)

    published = 0
    if plan.profiles and not dry_run:
        try:
            published = asyncio.run(_publish(settings, codec, plan.profiles))
        except KafkaUnavailable as error:
            _give_up(f"{error}; importing the file again is safe")
    good = len(plan.profiles)
    outcome = f"would publish {good}" if dry_run else f"published {published}"
    click.echo(
        f"{plan.rows} rows: {good} good, {plan.bad_rows} bad ({len(plan.problems)} problems); "
        f"{outcome} profiles to lms.user-profiles"
    )
    if plan.bad_rows:
        raise SystemExit(EXIT_BAD_ROWS)


def _check_rows(
    rows: list[Any],
    columns: dict[str, int],
    site: str,
    directory: ProfileDirectory,
    colleges: CollegeRegistry,
) -> ImportPlan:
    user_import = UserImport(site, columns, directory, colleges, datetime.now(UTC))
    with click.progressbar(rows, label="checking rows", file=sys.stderr) as bar:
        for row in bar:
            user_import.check(row)
    return user_import.plan()


async def _publish(settings: Settings, codec: Codec, profiles: list[dict[str, Any]]) -> int:
    published = 0
    try:
        async with admin_publisher(settings, codec) as publisher:
            with click.progressbar(
                length=len(profiles), label="publishing", file=sys.stderr
            ) as bar:
                for start in range(0, len(profiles), PUBLISH_CHUNK):
                    chunk = profiles[start : start + PUBLISH_CHUNK]
                    await publisher.publish_profiles(chunk)
                    published += len(chunk)
                    bar.update(len(chunk))
    except KafkaError as error:  # the producer could not even start
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {error!r}"
        ) from error
    except KafkaUnavailable as error:
        raise KafkaUnavailable(
            f"{error} ({published} of {len(profiles)} good rows were published)"
        ) from error
    return published


def _write_report(path: Path, problems: list[RowProblem]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "value", "reason"])
        writer.writerows((p.line, p.column, p.value, p.reason) for p in problems)


def _give_up(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_CANNOT_IMPORT)
