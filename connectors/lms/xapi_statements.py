"""xAPI statements with the verb `completed` to LearningRecords.

- The actor is `account{homePage, name}`: `name` is the Moodle user id and
  `homePage` names the site. The site comes from the posting credential; when
  site URLs are configured, a homePage of another site is refused rather than
  filed under the wrong hospital. An `mbox` actor is refused: an email address
  does not identify a Moodle user without a lookup lrx cannot make safely.
- The object id is the course URL (`.../course/view.php?id=<course id>`).
- `result.completion: false` is not complete; `result.success: false` is a
  failed attempt; a statement with no `result` is complete.
- Statements with other verbs are acknowledged and ignored (the caller counts them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.lms.problems import FieldReader, at
from schemas.vocabulary import CompletionState, Source
from streams.rules.record_identity import record_id_of

__all__ = ["COMPLETED", "VOIDED", "learning_record_from_statement"]

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def learning_record_from_statement(
    statement: FieldReader, site: str, site_urls: Mapping[str, str], now: datetime
) -> dict[str, Any] | None:
    """The LearningRecord a statement carries, or None for statements lrx ignores."""
    verb = statement.mapping("verb")
    verb_id = verb.text("id", max_length=2048) if verb else None
    if verb_id is None or verb_id != COMPLETED:
        return None
    before = len(statement.problems)
    statement_id = statement.text("id", required=False, max_length=64)
    user_id = _learner(statement, site, site_urls)
    course_id = _course_id(statement)
    completed_at = statement.iso_instant("timestamp")
    course_name = _course_name(statement)

    state = CompletionState.COMPLETE
    if "result" in statement.data:
        result = statement.mapping("result")
        if result is not None:
            if not result.boolean("completion", default=True):
                state = CompletionState.INCOMPLETE
            elif not result.boolean("success", default=True):
                state = CompletionState.COMPLETE_FAIL

    if len(statement.problems) > before:
        return None
    record = {
        "record_id": "",
        "site": site,
        "user_id": user_id,
        "course": {"id": course_id, "shortname": course_name or course_id},
        "activity": None,
        "completion_state": state,
        "completed_at": completed_at,
        "source": Source.XAPI,
        "voided": False,
        "expires_at": None,
        "origin": {
            "moodle_event": None,
            "moodle_object_id": None,
            "xapi_statement_id": statement_id,
        },
        "published_at": now,
    }
    record["record_id"] = record_id_of(record)
    return record


def _learner(statement: FieldReader, site: str, site_urls: Mapping[str, str]) -> str | None:
    actor = statement.mapping("actor")
    if actor is None:
        return None
    if "account" not in actor.data:
        if "mbox" in actor.data:
            actor.problem("mbox", "mbox actors are not supported; send account{homePage, name}")
        else:
            actor.problem("account", "missing")
        return None
    account = actor.mapping("account")
    if account is None:
        return None
    home_page = account.text("homePage", max_length=2048)
    name = account.identifier("name")
    if home_page and site_urls:
        owner = _site_of_url(home_page, site_urls)
        if owner != site:
            where = f"site {owner!r}" if owner else "no configured site"
            account.problem(
                "homePage", f"{home_page!r} belongs to {where}, but the credential is for {site!r}"
            )
    return name


def _site_of_url(url: str, site_urls: Mapping[str, str]) -> str | None:
    normalised = url.rstrip("/").lower()
    for site, base in site_urls.items():
        if normalised == base.rstrip("/").lower():
            return site
    return None


def _course_id(statement: FieldReader) -> str | None:
    target = statement.mapping("object")
    if target is None:
        return None
    url = target.text("id", max_length=2048)
    if url is None:
        return None
    parts = urlsplit(url)
    ids = parse_qs(parts.query).get("id", [])
    # isascii: str.isdigit() is also true of "²" and other scripts' digits, no Moodle course id.
    is_course_id = len(ids) == 1 and ids[0].isascii() and ids[0].isdigit()
    if not parts.path.endswith("/course/view.php") or not is_course_id:
        target.problem("id", f"{url!r} is not a course URL like https://lms/course/view.php?id=42")
        return None
    return ids[0]


def _course_name(statement: FieldReader) -> str | None:
    """The first name of the object's language map, read like any other field (checked text)."""
    target = statement.data.get("object")
    definition = target.get("definition") if isinstance(target, dict) else None
    names = definition.get("name") if isinstance(definition, dict) else None
    if not isinstance(names, dict) or not names:
        return None
    reader = FieldReader(names, at(statement.path, "object.definition.name"), statement.problems)
    return reader.text(next(iter(names)), required=False)
