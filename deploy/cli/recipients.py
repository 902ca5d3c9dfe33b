"""`lrx recipients`: which recipients get each course's learning records."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from connectors.lms.course_subscriptions import (
    CourseRecipients,
    SubscriptionChange,
    change_course_recipients,
    read_course_recipients,
    with_recipient,
    without_recipient,
)
from connectors.lms.problems import InvalidInput
from deploy.settings import Settings
from deploy.wiring import kafka_connection, recipient_directory
from schemas.codec import Codec
from streams.kafka.errors import KafkaUnavailable, TopicMissing
from streams.rules.recipients import RecipientDirectory, RecipientError


@click.group("recipients")
def command() -> None:
    """Course subscriptions, in the compacted topic lrx.course-recipients.

    A course's learning records go only to the recipients it subscribes. Names
    are resolved through LRX_RECIPIENTS and LRX_RECIPIENT_ALIASES (tahsn means
    cmars); they are stored as typed, each recipient once per course.
    """


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "lrx-cli"


site_option = click.option("--site", required=True, help="The hospital site the course belongs to.")
changed_by_option = click.option(
    "--changed-by", default=_login_name, show_default="your login name",
    help="Who made the change, recorded with it.",
)  # fmt: skip
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show the course before and after; publish nothing."
)


@command.command()
@click.argument("course")
@click.argument("recipient")
@site_option
@click.option(
    "--require-activity", "activities", multiple=True, metavar="CMID",
    help="A mandatory activity (course module id); repeat for several. When given, these "
    "replace the course's required activities; when omitted, they are kept.",
)  # fmt: skip
@changed_by_option
@dry_run_option
@click.pass_obj
def add(
    settings: Settings,
    course: str,
    recipient: str,
    site: str,
    activities: tuple[str, ...],
    changed_by: str,
    dry_run: bool,
) -> None:
    """Subscribe COURSE to RECIPIENT (an id or alias).

    RECIPIENT is a recipient id or an alias of one, in any case: cmars, CMaRS and
    tahsn all mean cmars. An unknown name is refused with the list of known ones.
    """
    directory = _directory(settings)

    def change(current: CourseRecipients | None) -> CourseRecipients:
        required = list(activities) if activities else None
        return with_recipient(
            current, site, course, recipient, required, changed_by, directory, _now()
        )

    _apply(settings, site, course, change, dry_run, directory)


@command.command()
@click.argument("course")
@click.argument("recipient")
@site_option
@changed_by_option
@dry_run_option
@click.pass_obj
def remove(
    settings: Settings, course: str, recipient: str, site: str, changed_by: str, dry_run: bool
) -> None:
    """Unsubscribe COURSE from RECIPIENT (an id or alias).

    Removing the last recipient leaves the course subscribed to none (its
    required activities are kept), so the topic still says who changed it.
    """
    directory = _directory(settings)

    def change(current: CourseRecipients | None) -> CourseRecipients:
        return without_recipient(current, site, course, recipient, changed_by, directory, _now())

    _apply(settings, site, course, change, dry_run, directory)


@command.command("list")
@click.option("--site", help="Only this site's courses.")
@click.option("--course", help="Only this course id (of every site, unless --site).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per course.")
@click.pass_obj
def list_courses(settings: Settings, site: str | None, course: str | None, as_json: bool) -> None:
    """List courses with their recipients and required activities."""
    directory = _directory(settings)
    courses = _run(
        read_course_recipients(
            kafka_connection(settings), settings.admin_kafka_timeout, Codec.default(), site
        )
    )
    shown = [v for (_, c), v in sorted(courses.items()) if course is None or c == course]
    for value in shown:
        if as_json:
            click.echo(json.dumps(_as_json(value, directory)))
        else:
            click.echo(_describe(value, directory))
    if not shown and not as_json:
        click.echo("no course subscriptions" + (f" at site {site}" if site else ""))


def _apply(
    settings: Settings,
    site: str,
    course: str,
    change: Callable[[CourseRecipients | None], CourseRecipients],
    dry_run: bool,
    directory: RecipientDirectory,
) -> None:
    try:
        update: SubscriptionChange = _run(
            change_course_recipients(
                kafka_connection(settings),
                settings.admin_kafka_timeout,
                Codec.default(),
                site,
                course,
                change,
                dry_run=dry_run,
            )
        )
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    before = _describe(update.before, directory) if update.before else "(not subscribed)"
    if not update.changed:
        click.echo(f"no change: {before}")
        return
    click.echo(f"before: {before}")
    click.echo(f"after:  {_describe(update.after, directory)}")
    click.echo("dry run: nothing published" if dry_run else "published to lrx.course-recipients")


def _directory(settings: Settings) -> RecipientDirectory:
    try:
        return recipient_directory(settings)
    except RecipientError as error:
        raise click.UsageError(f"LRX_RECIPIENTS / LRX_RECIPIENT_ALIASES: {error}") from None


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except (KafkaUnavailable, TopicMissing) as error:
        raise click.ClickException(str(error)) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _named(name: str, directory: RecipientDirectory) -> str:
    """`tahsn (= cmars)` for an alias, so the list shows where records really go."""
    try:
        resolved = directory.resolve(name)
    except RecipientError:
        return f"{name} (unknown recipient)"
    return name if resolved == name else f"{name} (= {resolved})"


def _describe(value: CourseRecipients, directory: RecipientDirectory) -> str:
    recipients = ", ".join(_named(n, directory) for n in value["recipients"]) or "none"
    activities = ", ".join(value["required_activities"]) or "none"
    changed = value["changed_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return (
        f"site {value['site']} course {value['course_id']}: recipients {recipients}; "
        f"required activities {activities} (changed by {value['changed_by']} at {changed})"
    )


def _as_json(value: CourseRecipients, directory: RecipientDirectory) -> dict[str, Any]:
    resolved = []
    for name in value["recipients"]:
        try:
            resolved.append(directory.resolve(name))
        except RecipientError:
            resolved.append(None)
    return {
        **value,
        "resolved_recipients": resolved,
        "changed_at": value["changed_at"].astimezone(UTC).isoformat(),
    }
