"""xAPI statements to LearningRecords, as Moodle's logstore_xapi sends them.

- The actor is `account{homePage, name}`: `name` is the Moodle user id and
  `homePage` names the site. The site comes from the posting credential; when
  site URLs are configured, a homePage of another site is refused rather than
  filed under the wrong hospital. An `mbox` actor is refused: an email address
  does not identify a Moodle user without a lookup lrx cannot make safely.
- A course completion's object is the course (`.../course/view.php?id=<course id>`).
- A module completion's object is the module (`.../mod/<modname>/view.php?id=<cmid>`,
  the course-module id) and its course is the course activity in
  `context.contextActivities.parent` (plugin 4.8 and later) or `grouping` (4.7 and
  earlier): it makes an activity completion of that course, the record the
  required-activity rule counts.
- `result.completion: false` is not complete; `result.success: false` is a
  failed attempt (a module's `true` a passed one); no `result` is complete.
  Plugin 4.7 and earlier send every module completion state as a plain
  `completed` (an undone completion looks like a completion there).
- Statements with other verbs (viewed, graded, `uncompleted`…) are acknowledged
  and ignored (the caller counts them).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.lms.problems import FieldReader, at
from connectors.lms.profile_directory import username_key
from schemas.vocabulary import CompletionState, Source
from streams.rules.record_identity import record_id_of

__all__ = [
    "COMPLETED",
    "UNCOMPLETED",
    "VOIDED",
    "learning_record_from_statement",
    "statement_id_of",
]

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
# What logstore_xapi 4.8 and later send for a module completion undone (state 0).
UNCOMPLETED = "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/uncompleted"
# Statement ids lrx assigns to statements that came without one (logstore_xapi sends none).
STATEMENT_NAMESPACE = uuid.UUID("3f0f9a4e-52a7-5c8e-9d1b-7c6e2a4d8b10")


def statement_id_of(statement: object) -> str:
    """The statement's id, or for one without: the same UUID each time the same one comes.

    `context.registration` is left out: logstore_xapi derives it from the sending
    process's session key, so a statement resent by another cron run differs there only.
    """
    if isinstance(statement, dict) and isinstance(statement.get("id"), str):
        return statement["id"]
    content = statement
    if isinstance(statement, dict) and isinstance(statement.get("context"), dict):
        context = {k: v for k, v in statement["context"].items() if k != "registration"}
        content = {**statement, "context": context}
    # ASCII: a lone surrogate (refused later, with a 400) must not break the hashing first.
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(STATEMENT_NAMESPACE, canonical))


def learning_record_from_statement(
    statement: FieldReader,
    site: str,
    site_urls: Mapping[str, str],
    now: datetime,
    account_homepage: str | None = None,
    user_ids: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The LearningRecord a statement carries, or None for statements lrx ignores."""
    verb = statement.mapping("verb")
    verb_id = verb.text("id", max_length=2048) if verb else None
    if verb_id is None or verb_id != COMPLETED:
        return None
    before = len(statement.problems)
    statement_id = statement.text("id", required=False, max_length=64) or statement_id_of(
        statement.data
    )
    user_id = _learner(statement, site, site_urls, account_homepage, user_ids or {})
    target = _target(statement)
    if target is not None and target.kind == "module":
        course_id, course_name = _module_course(statement)
        activity = {
            "cmid": target.id,
            "name": _name(statement, statement.data.get("object"), "object"),
            "modname": target.modname,
        }
        source = Source.ACTIVITY_COMPLETION
    else:
        course_id = target.id if target is not None else None
        course_name = _name(statement, statement.data.get("object"), "object")
        activity, source = None, Source.XAPI
    completed_at = statement.iso_instant("timestamp")

    state = CompletionState.COMPLETE
    if "result" in statement.data:
        result = statement.mapping("result")
        if result is not None:
            if not result.boolean("completion", default=True):
                state = CompletionState.INCOMPLETE
            elif not result.boolean("success", default=True):
                state = CompletionState.COMPLETE_FAIL
            elif activity is not None and result.data.get("success") is True:
                state = CompletionState.COMPLETE_PASS

    if len(statement.problems) > before:
        return None
    record = {
        "record_id": "",
        "site": site,
        "user_id": user_id,
        "course": {"id": course_id, "shortname": course_name or course_id},
        "activity": activity,
        "completion_state": state,
        "completed_at": completed_at,
        "source": source,
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


def _learner(
    statement: FieldReader,
    site: str,
    site_urls: Mapping[str, str],
    account_homepage: str | None,
    user_ids: Mapping[str, str],
) -> str | None:
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
    if home_page and account_homepage and _same_url(home_page, account_homepage):
        # logstore_xapi's "send username": the name is the username, not the user id.
        username = account.text("name")
        if username is None:
            return None
        user_id = user_ids.get(username_key(username))
        if user_id is None:
            account.problem(
                "name",
                f"no user of site {site} has the username {username!r} in lms.user-profiles; "
                "import the site's users first (lrx users import)",
            )
        return user_id
    name = account.identifier("name")
    if home_page and site_urls:
        owner = _site_of_url(home_page, site_urls)
        if owner != site:
            where = f"site {owner!r}" if owner else "no configured site"
            account.problem(
                "homePage", f"{home_page!r} belongs to {where}, but the credential is for {site!r}"
            )
    return name


def _same_url(one: str, other: str) -> bool:
    return one.rstrip("/").lower() == other.rstrip("/").lower()


def _site_of_url(url: str, site_urls: Mapping[str, str]) -> str | None:
    for site, base in site_urls.items():
        if _same_url(url, base):
            return site
    return None


@dataclass(frozen=True)
class _Target:
    kind: str  # "course" or "module"
    id: str  # the course id, or the module's cmid
    modname: str | None = None


def _target(statement: FieldReader) -> _Target | None:
    """What the statement's object is: a course or a course module, from its URL."""
    target = statement.mapping("object")
    if target is None:
        return None
    url = target.text("id", max_length=2048)
    if url is None:
        return None
    found = _moodle_page(url)
    if found is None:
        target.problem(
            "id",
            f"{url!r} is neither a course URL like https://lms/course/view.php?id=42 "
            "nor a module URL like https://lms/mod/scorm/view.php?id=33",
        )
    return found


def _moodle_page(url: str) -> _Target | None:
    parts = urlsplit(url)
    ids = parse_qs(parts.query).get("id", [])
    # isascii: str.isdigit() is also true of "²" and other scripts' digits, no Moodle id.
    if not (len(ids) == 1 and ids[0].isascii() and ids[0].isdigit()):
        return None
    if parts.path.endswith("/course/view.php"):
        return _Target("course", ids[0])
    module = _MODULE_PATH.search(parts.path)
    return _Target("module", ids[0], module.group(1)) if module else None


_MODULE_PATH = re.compile(r"/mod/([a-z][a-z0-9_]*)/view\.php$")


def _module_course(statement: FieldReader) -> tuple[str | None, str | None]:
    """The course of a module statement: the course activity among its context activities."""
    context = statement.data.get("context")
    activities = context.get("contextActivities") if isinstance(context, dict) else None
    if isinstance(activities, dict):
        for group in ("parent", "grouping"):
            listed = activities.get(group)
            for index, activity in enumerate(_as_list(listed)):
                url = activity.get("id") if isinstance(activity, dict) else None
                found = _moodle_page(url) if isinstance(url, str) else None
                if found is not None and found.kind == "course":
                    where = f"context.contextActivities.{group}"
                    where += f"[{index}]" if isinstance(listed, list) else ""
                    return found.id, _name(statement, activity, where)
    statement.problem(
        "context.contextActivities.parent",
        "a module completion must name its course (a .../course/view.php?id= activity)",
    )
    return None, None


def _as_list(value: object) -> list:
    # xAPI allows one activity or an array of them in each contextActivities group.
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def _name(statement: FieldReader, activity: object, where: str) -> str | None:
    """The first name of an activity's language map (the activity at `where`), checked text."""
    definition = activity.get("definition") if isinstance(activity, dict) else None
    names = definition.get("name") if isinstance(definition, dict) else None
    if not isinstance(names, dict) or not names:
        return None
    reader = FieldReader(names, at(statement.path, f"{where}.definition.name"), statement.problems)
    return reader.text(next(iter(names)), required=False)
