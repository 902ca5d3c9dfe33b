"""`lrx demo`: realistic LMS traffic against a running `lrx up`, then an account of every record.

The traffic goes in the way a hospital's LMS would send it: through the gateway,
as user profiles, course subscriptions, Moodle events, xAPI statements and our
own JSON. The account comes from where each outcome is recorded: the CMaRS
emulator's inspection endpoint (delivered), lrx.pending, lrx.ineligible and
lrx.dlq.cmars. Every record id sent must be in exactly one of them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession, ClientTimeout

from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.moodle_events import COURSE_COMPLETED, MODULE_COMPLETION_UPDATED
from connectors.lms.xapi_statements import COMPLETED
from deploy.settings import Settings
from deploy.wiring import kafka_connection
from schemas.codec import Codec
from streams.read_model.record_fate import Fate, outcomes_by_record, read_outcomes
from streams.rules.colleges import CollegeRegistry
from streams.rules.reporting_period import ReportingCalendar

__all__ = ["DemoPlan", "Outcomes", "plan_traffic", "send_traffic", "account_for"]

# Most practitioners are physicians; the rest spread over the other colleges in the registry.
PHYSICIANS = "CA-ON-CPSO"
BATCH = 100


@dataclass
class DemoPlan:
    """Everything the demo will post, in order, by gateway endpoint."""

    site: str
    profiles: list[dict] = field(default_factory=list)
    late_profiles: list[dict] = field(default_factory=list)  # posted after their records
    courses: dict[str, dict] = field(default_factory=dict)  # course id -> PUT body
    events: list[dict] = field(default_factory=list)
    statements: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # our JSON: equivalency, documentation


def plan_traffic(
    site: str,
    practitioners: int,
    courses: int,
    now: datetime,
    calendar: ReportingCalendar,
    colleges: CollegeRegistry,
    seed: int = 7,
) -> DemoPlan:
    """A reproducible mix of users, subscriptions and completions."""
    rng = random.Random(seed)
    plan = DemoPlan(site)
    period = calendar.period_of(now)
    course_ids = [str(100 + n) for n in range(courses)]
    required: dict[str, str] = {}
    for n, course in enumerate(course_ids):
        if n == courses - 1:
            recipients: list[str] = []  # a course nobody subscribed: no_recipient
        else:
            recipients = ["tahsn"] if n % 3 == 1 else ["cmars"]
        activities = []
        if n % 3 == 0:
            required[course] = str(5000 + n)  # e.g. the SCORM package that must be complete
            activities = [required[course]]
        plan.courses[course] = {"recipients": recipients, "required_activities": activities}

    def moment(earliest: datetime) -> int:
        span = max(1, int((now - earliest).total_seconds()) - 60)
        return int(earliest.timestamp()) + rng.randrange(span)

    for index in range(practitioners):
        user_id = str(2000 + index)
        profile = {
            "id": user_id,
            "username": f"practitioner{index}",
            "firstname": rng.choice(["Amira", "Ben", "Chen", "Dana", "Eli", "Farah", "Gus"]),
            "lastname": rng.choice(["Singh", "Tremblay", "Wong", "Roy", "Martin", "Nguyen"]),
            "email": f"practitioner{index}@hospital.example",
            "ociid": _oci_id(rng, colleges),
        }
        (plan.late_profiles if rng.random() < 0.1 else plan.profiles).append(profile)
        for course in rng.sample(course_ids, k=rng.randint(1, 3)):
            start = period.start if rng.random() > 0.08 else period.start - timedelta(days=300)
            completed = moment(start)
            kind = rng.random()
            if course in required and rng.random() < 0.8:
                # The required activity, sometimes completed after the course itself.
                after = rng.random() < 0.3
                activity_time = completed + (600 if after else -600)
                plan.events.append(
                    _module_event(user_id, course, required[course], activity_time, 1)
                )
            if kind < 0.6:
                plan.events.append(_course_event(user_id, course, completed))
            elif kind < 0.75:
                plan.statements.append(_statement(site, user_id, course, completed, rng))
            elif kind < 0.85:
                cmid = str(7000 + rng.randrange(50))
                state = rng.choice([0, 3])  # a partial or failed attempt
                plan.events.append(_module_event(user_id, course, cmid, completed, state))
            else:
                source = rng.choice(["equivalency", "supporting_documentation", "admin_upload"])
                plan.records.append(_own_record(user_id, course, completed, source))
    return plan


def _oci_id(rng: random.Random, colleges: CollegeRegistry) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.08:
        return rng.choice(["CPSO-12AB", "College of Nurses | 5", "CA-ON-CPSO-"])
    known = list(colleges)
    weights = [6 if college.code == PHYSICIANS else 1 for college in known]
    college = rng.choices(known, weights=weights)[0]
    licence = str(rng.randrange(10000, 999999))
    return f"{college.code}-{licence}" if rng.random() < 0.5 else f"{college.name} | {licence}"


def _course_event(user_id: str, course: str, completed: int) -> dict:
    return {
        "eventname": COURSE_COMPLETED,
        "objectid": int(user_id) * 1000 + int(course),
        "userid": 2,
        "relateduserid": user_id,
        "courseid": course,
        "timecreated": completed + 120,
        "timecompleted": completed,
        "courseshortname": f"MANDATORY-{course}",
    }


def _module_event(user_id: str, course: str, cmid: str, when: int, state: int) -> dict:
    return {
        "eventname": MODULE_COMPLETION_UPDATED,
        "objectid": int(cmid) * 10000 + int(user_id),
        "userid": user_id,
        "relateduserid": user_id,
        "courseid": course,
        "contextinstanceid": cmid,
        "timecreated": when,
        "modname": "scorm",
        "other": {"completionstate": state},
    }


def _statement(site: str, user_id: str, course: str, completed: int, rng: random.Random) -> dict:
    statement = {
        "id": f"{rng.getrandbits(128):032x}",
        "actor": {"account": {"homePage": f"https://{site}.example", "name": user_id}},
        "verb": {"id": COMPLETED},
        "object": {"id": f"https://{site}.example/course/view.php?id={course}"},
        "timestamp": datetime.fromtimestamp(completed, UTC).isoformat(),
    }
    if rng.random() < 0.2:
        statement["result"] = {"completion": False}
    statement["id"] = "-".join(
        [statement["id"][:8], statement["id"][8:12], statement["id"][12:16],
         statement["id"][16:20], statement["id"][20:32]]
    )  # fmt: skip
    return statement


def _own_record(user_id: str, course: str, completed: int, source: str) -> dict:
    record = {
        "user_id": user_id,
        "course": {"id": course, "shortname": f"MANDATORY-{course}"},
        "completion_state": "complete",
        "source": source,
        "completed_at": datetime.fromtimestamp(completed, UTC).isoformat(),
    }
    if source == "supporting_documentation":
        record["activity"] = {"cmid": "9000", "name": "Supporting Documentation"}
    return record


async def send_traffic(
    settings: Settings, plan: DemoPlan, token: str, say: Callable[[str], None]
) -> set[str]:
    """Post the plan through the gateway; returns every record id the gateway accepted."""
    base = f"http://127.0.0.1:{settings.gateway_port}"
    headers = {"Authorization": f"Bearer {token}"}
    sent: set[str] = set()
    async with ClientSession(base, headers=headers, timeout=ClientTimeout(total=60)) as http:

        async def post(path: str, items: list[dict]) -> None:
            # The xAPI resource answers as an LRS does (200, statement ids): the record ids
            # of its completions are worked out here the way the gateway maps them.
            xapi = path == "/xapi/statements"
            extra = {"X-Experience-API-Version": "1.0.3"} if xapi else None
            for start in range(0, len(items), BATCH):
                chunk = items[start : start + BATCH]
                async with http.post(path, json=chunk, headers=extra) as answer:
                    body = await answer.json()
                    if answer.status != (200 if xapi else 202):
                        raise RuntimeError(f"{path} answered {answer.status}: {body}")
                if xapi:
                    mapped = map_batch("xapi", chunk, LmsContext(plan.site), datetime.now(UTC))
                    sent.update(r["record_id"] for r in mapped.records)
                else:
                    sent.update(body.get("record_ids", []))

        for course, body in plan.courses.items():
            async with http.put(f"/v1/courses/{course}/recipients", json=body) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"course {course}: {answer.status} {await answer.text()}")
        say(f"subscribed {len(plan.courses)} courses")
        await post("/v1/users", plan.profiles)
        say(f"posted {len(plan.profiles)} profiles")
        await post("/v1/moodle/events", plan.events)
        await post("/xapi/statements", plan.statements)
        await post("/v1/learning-records", plan.records)
        say(
            f"posted {len(plan.events)} Moodle events, {len(plan.statements)} xAPI statements, "
            f"{len(plan.records)} other records"
        )
        # A republished batch: same record ids, which the pipeline must not send twice.
        await post("/v1/moodle/events", plan.events[:BATCH])
        await post("/v1/users", plan.late_profiles)
        say(f"posted {len(plan.late_profiles)} late profiles, and republished one batch")
    return sent


@dataclass
class Outcomes:
    delivered: set[str] = field(default_factory=set)
    pending: dict[str, str] = field(default_factory=dict)  # record id -> why held
    ineligible: dict[str, str] = field(default_factory=dict)  # record id -> reason code
    dead_lettered: dict[str, str] = field(default_factory=dict)  # record id -> reason code

    def state_of(self, record_id: str) -> list[str]:
        states = []
        if record_id in self.delivered:
            states.append("delivered")
        if record_id in self.pending:
            states.append("pending")
        if record_id in self.ineligible:
            states.append("ineligible")
        if record_id in self.dead_lettered:
            states.append("dead-lettered")
        return states


async def account_for(settings: Settings, sent: set[str]) -> Outcomes:
    """Where each record is now: the emulator for delivered, the read model for the rest."""
    outcomes = Outcomes()
    emulator = f"http://{settings.emulator_host}:{settings.emulator_port}"
    async with (
        ClientSession(timeout=ClientTimeout(total=30)) as http,
        http.get(f"{emulator}/admin/records") as answer,
    ):
        inventory = await answer.json()
    outcomes.delivered = {r["record_id"] for r in inventory["records"]} & sent
    contents = await read_outcomes(
        kafka_connection(settings), settings.admin_kafka_timeout, settings.recipients
    )
    fates = outcomes_by_record(contents, settings.recipients, Codec.default(), sent)
    for record_id, found in fates.items():
        for outcome in found:
            if outcome.fate is Fate.PENDING:
                outcomes.pending[record_id] = "held"
            elif outcome.fate is Fate.INELIGIBLE:
                outcomes.ineligible[record_id] = outcome.reason
            elif outcome.fate is Fate.DEAD_LETTERED:
                outcomes.dead_lettered[record_id] = outcome.reason
    return outcomes


def tally(outcomes: Outcomes, sent: set[str]) -> tuple[list[tuple[str, int]], int, list[str]]:
    """Table rows, the unaccounted count, and record ids found in more than one state."""
    rows = [("delivered to CMaRS (emulator confirms)", len(outcomes.delivered))]
    rows.append(("pending (waiting for an OCI ID or activity)", len(outcomes.pending)))
    for reason, count in sorted(Counter(outcomes.ineligible.values()).items()):
        rows.append((f"ineligible: {reason}", count))
    for reason, count in sorted(Counter(outcomes.dead_lettered.values()).items()):
        rows.append((f"dead-lettered: {reason}", count))
    accounted = set(outcomes.delivered) | set(outcomes.pending)
    accounted |= set(outcomes.ineligible) | set(outcomes.dead_lettered)
    twice = sorted(r for r in sent if len(outcomes.state_of(r)) > 1)
    return rows, len(sent - accounted), twice
