"""`lrx trace`: why did (or didn't) a user's learning record reach CMaRS?"""

from __future__ import annotations

import asyncio
import json

import click

from deploy.record_trace import record_lines, trace_lines, trace_user
from deploy.settings import Settings


@click.command("trace")
@click.option("--site", required=True, help="The hospital site of the user.")
@click.option("--user", "user_id", required=True, help="The Moodle user id within the site.")
@click.option("--course", "course_id", help="Only this course's records (Moodle course id).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
@click.pass_obj
def command(
    settings: Settings, site: str, user_id: str, course_id: str | None, as_json: bool
) -> None:
    """Say what happened to a user's learning records, and why.

    For the FAQ "the physician completed the course, CMaRS says they haven't":
    shows the user's OCI ID as lrx understands it, each course's recipients and
    required activities, and for every record the LMS sent: delivered (with the
    receipt), routed and waiting for the sink, pending (and what it waits for),
    ineligible (with the reason) or dead-lettered (with CMaRS's answer). With
    --course, a course with no record at all says so.

    It reads the topics whole, so it takes a few seconds on a large cluster.
    """
    trace = asyncio.run(trace_user(settings, site, user_id, course_id))
    if not as_json:
        click.echo("\n".join(trace_lines(trace)))
        return
    for record in trace.records:
        click.echo(
            json.dumps(
                {
                    "record_id": record.record["record_id"],
                    "course_id": record.record["course"]["id"],
                    "source": record.record["source"],
                    "completed_at": record.record["completed_at"].isoformat(),
                    "period": record.period,
                    "outcomes": record_lines(record),
                    "fates": [
                        {"fate": str(o.fate), "recipient": o.recipient, "reason": o.reason}
                        for o in record.outcomes
                    ],
                }
            )
        )
