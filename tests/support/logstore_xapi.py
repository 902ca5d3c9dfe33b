"""What Moodle's logstore_xapi plugin sends to its LRS: the HTTP request and the statements.

Read from github.com/xAPI-vle/moodle-logstore_xapi: tags v4.0.0 to v4.9.0, v5.0.0, v5.0.1
and master at 16663652 (May 2026). Paths below are in that repository.

The statement shapes do NOT split at 4 vs 5: they split at v4.8.0 ("Yet Logstore Work
2024", #861). v4.8.0, v4.9.0, v5.0.x and master build the same statements for the events
here (v4.9.0 -> v5.0.0 changed only SCORM tracking; v5.0.1 -> master only removed the
opt-in JISC extensions). v4.0.0 to v4.7.0 build the older "legacy" shape. So every builder
takes `release`, the plugin's release string ("4.7.0", "4.9.0", "5.0.1", ...), not a major
version: LEGACY_4X, CURRENT_4X and V5 name the usual three.

HTTP, as src/loader/moodle_curl_lrs.php sends it (the store always picks this loader:
classes/log/store.php get_handler_config(); src/loader/lrs.php is the same code):
- Method POST (CURLOPT_POSTFIELDS, no CURLOPT_CUSTOMREQUEST).
- URL: src/loader/utils/correct_endpoint.php drops a trailing "/statements" if the
  configured endpoint ends with exactly that, else rtrims "/"; then "/statements" is
  appended. So ".../xapi", ".../xapi/" and ".../xapi/statements" all give
  ".../xapi/statements", but ".../xapi/statements/" gives ".../xapi/statements/statements".
  No query string. See `statements_url`.
- Headers the plugin sets (CURLOPT_HTTPHEADER), nothing else:
  "Authorization: Basic " + base64(username + ":" + password) (settings
  logstore_xapi/username and /password), "X-Experience-API-Version: 1.0.3" since v4.8.0
  ("1.0.0" in v4.0.0-v4.7.0), "Content-Type: application/json". libcurl adds Host,
  "Accept: */*" and Content-Length, no User-Agent, and may add "Expect: 100-continue"
  for large bodies (libcurl's own threshold: 1 kB in older versions, 1 MB in recent ones).
- Body: json_encode($statements) with no flags: always a JSON array (one flat array of the
  statements of every event in the batch), compact, "/" escaped as "\\/", non-ASCII as
  \\uXXXX. It is "[]" when there is nothing to send: load_in_batches() ->
  get_event_batches() returns [[]] for no events, and the emit (every minute), failed
  (every 30 min) and historical (hourly) tasks of db/tasks.php each run it, so an idle
  Moodle POSTs "[]" up to every minute. If json_encode fails nothing is sent.
- No statement has an "id" (nor version/authority/stored): the LRS assigns ids.
- Success is HTTP 200 and only 200 (`$responsecode !== 200` throws), so 204 counts as a
  failure; the response body is never read. No timeout is set (CURLOPT_TIMEOUT unset: no
  limit; libcurl's connect timeout default applies); CURLOPT_SSL_VERIFYPEER is false.
  A transport error gives code 0.
- Any failure: src/loader/utils/load_batch.php logs "Failed load batch (N events)..."
  with debugging(), stores the response text and status (errortype) on each event, and
  marks the whole batch not loaded; the tasks copy those events to
  logstore_xapi_failed_log (lib.php logstore_xapi_store_failed_events) and delete them
  from logstore_xapi_log. They are not retried on their own: an admin moves them back
  (report.php / classes/log/moveback.php). Since v4.2.0, if the status is exactly 400,
  the batch had more than one event and setting logstore_xapi/resendfailedbatches is on
  (default off), the batch is split into chunks of round(N/2) events and each is re-POSTed,
  recursively down to single events: the good statements of a rejected batch are sent
  again (with no ids), so the LRS must store all of a POST or nothing of it.
- Batches are of Moodle events, not statements: logstore_xapi/maxbatchsize (settings.php
  default 30; store.php falls back to 100) events per POST. Background mode
  (logstore_xapi/backgroundmode, default on) sends from the cron task emit_task; with it
  off, events are sent during the Moodle request that logged them.

Statements (src/transformer/handler.php -> the event's transformer, then, since v4.8.0,
src/transformer/utils/apply_statement_defaults.php merges in context.platform (setting
logstore_xapi/context_platform, default "Moodle"), context.registration and timestamp).
The builders below return dicts whose key order is the order PHP encodes them in.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

LEGACY_4X = "4.7.0"  # last release of the legacy shape (Oct 2022, current until Feb 2025)
CURRENT_4X = "4.9.0"  # last 4.x (Feb 2026, Moodle 4.1-4.5): same statements as 5.x
V5 = "5.0.1"  # Moodle 4.3-5.1

PLUGIN_URL = "https://github.com/xAPI-vle/moodle-logstore_xapi"
INFO_EXTENSION = "http://lrs.learninglocker.net/define/extensions/info"
SHORT_ID_EXTENSION = "https://w3id.org/learning-analytics/learning-management-system/short-id"
EXTERNAL_ID_EXTENSION = "https://w3id.org/learning-analytics/learning-management-system/external-id"

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
UNCOMPLETED = "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/uncompleted"  # since v4.8.0
VIEWED = "http://id.tincanapi.com/verb/viewed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"

COURSE_TYPE = "https://w3id.org/xapi/cmi5/activitytype/course"  # since v4.8.0
LEGACY_COURSE_TYPE = "http://id.tincanapi.com/activitytype/lms/course"  # v4.0.0-v4.7.0
LEGACY_MODULE_TYPE = "http://id.tincanapi.com/activitytype/lms/module"  # every module, <4.8
SITE_TYPE = "http://id.tincanapi.com/activitytype/lms"
SECTION_TYPE = "http://id.tincanapi.com/activitytype/section"
SOURCE_TYPE = "http://id.tincanapi.com/activitytype/source"

# src/transformer/utils/get_module_activity_type.php (v4.8.0 on): the object type of a module.
MODULE_TYPES = {
    "assign": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/assignment",
    "bigbluebuttonbn": "http://adlnet.gov/expapi/activities/meeting",
    "book": "http://id.tincanapi.com/activitytype/book",
    "chat": "http://id.tincanapi.com/activitytype/chat-channel",
    "choice": "http://adlnet.gov/expapi/activities/cmi.interaction",
    "data": "http://xapi.org.au/contentprofile/activitytype/database",
    "facetoface": "https://w3id.org/xapi/acrossx/activities/face-to-face-discussion",
    "feedback": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/feedback",
    "folder": "http://activitystrea.ms/collection",
    "forum": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/forum",
    "glossary": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/glossary",
    "h5pactivity": "http://adlnet.gov/expapi/activities/media",
    "imscp": "https://w3id.org/xapi/cmi5/activitytype/course",
    "label": "https://w3id.org/xapi/acrossx/activities/webpage",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "lti": "http://adlnet.gov/expapi/activities/media",
    "page": "https://w3id.org/xapi/acrossx/activities/page",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "resource": "http://id.tincanapi.com/activitytype/resource",
    "scorm": "http://adlnet.gov/expapi/activities/module",
    "url": "http://adlnet.gov/expapi/activities/link",
    "wiki": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/wiki",
    "workshop": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/workshop",
    "questionnaire": "http://id.tincanapi.com/activitytype/survey",
    "survey": "http://id.tincanapi.com/activitytype/survey",
}
DEFAULT_MODULE_TYPE = "http://id.tincanapi.com/activitytype/lms/module"

# Before v4.8.0 a module's "viewed" had its own transformer for these modules
# (src/transformer/events/mod_<modname>/course_module_viewed.php at v4.7.0), each giving the
# object this type; the others went to events/all/course_module_viewed.php (type lms/module),
# except forum, feedback and quiz, whose transformers build other objects (not covered here).
LEGACY_VIEWED_TYPES = {
    "book": "http://id.tincanapi.com/activitytype/book",
    "chat": "http://id.tincanapi.com/activitytype/chat-channel",
    "facetoface": "https://w3id.org/xapi/acrossx/activities/face-to-face-discussion",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "page": "https://w3id.org/xapi/acrossx/activities/page",
    "resource": "http://id.tincanapi.com/activitytype/resource",
    "scorm": "http://id.tincanapi.com/activitytype/legacy-learning-standard",
    "survey": "http://id.tincanapi.com/activitytype/survey",
    "url": "http://adlnet.gov/expapi/activities/link",
}
LEGACY_VIEWED_NOT_COVERED = ("forum", "feedback", "quiz")


@dataclass(frozen=True)
class Options:
    """The site and the plugin settings that change statements (classes/log/store.php).

    The defaults are the plugin's defaults; the tests/ fixtures of the plugin use
    moodle_release="1.0.0", plugin_version="0.0.0-development", session_key="test_session_id",
    site_fullname="test_site_fullname" and the wwwroot "http://www.example.org".
    Not covered: send_jisc_data (v4.7.0-v5.0.1, off by default, adds JISC extensions) and
    Totara (source http://totaralearning.com, "Totara Learn").
    """

    site_fullname: str = "Moodle LMS"  # the fullname of course 1 (empty: the plugin's fallback)
    site_lang: str = ""  # course 1's lang
    moodle_release: str = "4.5.2 (Build: 20250210)"  # $CFG->release, sent in the info extension
    plugin_version: str | None = None  # $plugin->release; None: what the tag's version.php says
    session_key: str = "test_session_id"  # sesskey() of the sending process (cron, by default)
    context_platform: str = "Moodle"  # logstore_xapi/context_platform (v4.8.0 on)
    send_name: bool = True  # logstore_xapi/send_name (always sent before v4.8.0)
    send_mbox: bool = False  # logstore_xapi/mbox: actor by mbox if the email is valid
    send_short_course_id: bool = False  # logstore_xapi/shortcourseid
    send_idnumber: bool = False  # logstore_xapi/sendidnumber
    # Offset of PHP's default timezone for legacy timestamps (date('c')); None: Europe/London,
    # which src/transformer/utils/create_timestamp.php sets when it is loaded (before v4.8.0).
    legacy_utc_offset_minutes: int | None = None


DEFAULTS = Options()


# --- versions


def _release_tuple(release: str) -> tuple[int, int, int]:
    parts = release.removeprefix("v").split("-")[0].split(".")
    major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    return major, minor, patch


def is_legacy(release: str) -> bool:
    """True for v4.0.0-v4.7.0, whose statements have the old shape."""
    return _release_tuple(release) < (4, 8, 0)


def xapi_version_header(release: str) -> str:
    # src/loader/moodle_curl_lrs.php: "1.0.3" from v4.8.0, "1.0.0" before.
    return "1.0.0" if is_legacy(release) else "1.0.3"


def reported_plugin_version(release: str, options: Options = DEFAULTS) -> str:
    """The value of the plugin URL in the info extension: $plugin->release of version.php.

    Up to v4.8.0 the tagged version.php has release '' (the GitHub zip the plugins directory
    serves is the tag), from v4.9.0 the release itself ("4.9.0", "5.0.1").
    """
    if options.plugin_version is not None:
        return options.plugin_version
    return "" if _release_tuple(release) < (4, 9, 0) else release.removeprefix("v")


# --- small utilities, each a port of one plugin file


def course_lang(lang: str | None) -> str:
    """src/transformer/utils/get_course_lang.php: course.lang as an xAPI language tag.

    '' or None -> 'en' (whatever the site language), '_' -> '-', anything not like 'xx' or
    'xx-yy' -> 'en'. So 'fr' -> 'fr', 'pt_br' -> 'pt-br', 'en_us_k12' -> 'en'.
    """
    prepped = "en" if not lang else lang.replace("_", "-")
    parts = prepped.split("-")
    valid = len(parts) in (1, 2) and all(len(p) == 2 and p.isascii() and p.isalpha() for p in parts)
    return prepped if valid else "en"


def registration(session_key: str) -> str:
    """src/transformer/utils/string_to_uuidv5.php: context.registration (v4.8.0 on).

    Not an RFC 4122 name-based UUID: sha1 of the namespace *text* + the sesskey(), version
    nibble forced to 5, the clock_seq word masked with 0x3f3f and or-ed with 0x8000.
    The sesskey is that of the process sending (the cron task in background mode), not the
    learner's: all statements of one run share it and it means nothing to an LRS.
    """
    digest = hashlib.sha1(("12345678-1234-1234-1234-123456789abc" + session_key).encode())
    h = digest.hexdigest()
    clock = format((int(h[16:20], 16) & 0x3F3F) | 0x8000, "x")
    return f"{h[0:8]}-{h[8:12]}-5{h[13:16]}-{clock}-{h[20:32]}"


def _london_offset(moment: datetime) -> timedelta:
    """Europe/London's UTC offset (EU rule, 1996 on): +1h from the last Sunday of March
    01:00 UTC to the last Sunday of October 01:00 UTC."""

    def last_sunday_1am(month: int) -> datetime:
        day = datetime(moment.year, month, 31, 1, tzinfo=UTC)
        return day - timedelta(days=(day.weekday() + 1) % 7)

    summer = last_sunday_1am(3) <= moment < last_sunday_1am(10)
    return timedelta(hours=1 if summer else 0)


def _as_seconds(time: int | datetime) -> int:
    return int(time.timestamp()) if isinstance(time, datetime) else int(time)


def timestamp(time: int | datetime, release: str = V5, options: Options = DEFAULTS) -> str:
    """The statement timestamp, from the event's timecreated (whole seconds).

    v4.8.0 on (src/transformer/utils/create_timestamp.php): UTC, always ".000Z",
    e.g. "2015-06-10T14:31:41.000Z". Before: PHP date('c') in PHP's default timezone,
    e.g. "2015-06-10T15:31:41+01:00" (the plugin sets Europe/London when it loads; the
    plugin's own legacy fixtures show "+08:00", Moodle's PHPUnit timezone Australia/Perth).
    """
    moment = datetime.fromtimestamp(_as_seconds(time), UTC)
    if not is_legacy(release):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if options.legacy_utc_offset_minutes is None:
        offset = _london_offset(moment)
    else:
        offset = timedelta(minutes=options.legacy_utc_offset_minutes)
    return moment.astimezone(timezone(offset)).isoformat()


def php_json(value: object) -> str:
    """json_encode($value) with no flags: compact, '/' as '\\/', non-ASCII as \\uXXXX."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("/", "\\/")  # '/' only occurs inside JSON strings


# --- the parts of a statement


def actor(
    *,
    wwwroot: str,
    user_id: int,
    fullname: str = "Test Learner",
    username: str | None = None,
    account_homepage: str | None = None,
    email: str | None = None,
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """src/transformer/utils/get_user.php.

    Default: {"name": fullname, "account": {"homePage": wwwroot, "name": str(user_id)}}.
    `username` given = the send_username setting on: account {"homePage": account_homepage
    (setting logstore_xapi/account_homepage, default wwwroot; legacy: always wwwroot),
    "name": username}. options.send_mbox and a valid `email`: {"name", "mbox": "mailto:..."}.
    `fullname` is Moodle's firstname + " " + lastname.
    """
    legacy = is_legacy(release)
    agent: dict = {}
    if legacy or options.send_name:
        agent["name"] = fullname
    if options.send_mbox and email and "@" in email:
        agent["mbox"] = "mailto:" + email
        return agent
    if username is not None:
        homepage = wwwroot if legacy or not account_homepage else account_homepage
        agent["account"] = {"homePage": homepage, "name": username}
        return agent
    agent["account"] = {"homePage": wwwroot, "name": str(user_id)}
    return agent


def _activity(release: str, activity_id: str, definition: dict) -> dict:
    # src/transformer/utils/get_activity/base.php adds objectType first, since v4.8.0.
    head = {} if is_legacy(release) else {"objectType": "Activity"}
    return head | {"id": activity_id, "definition": definition}


def course_activity(
    *,
    wwwroot: str,
    course_id: int,
    course_fullname: str,
    course_shortname: str = "",
    course_idnumber: str | None = "",
    course_lang_code: str = "",
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """src/transformer/utils/get_activity/course.php: the course as an Activity."""
    lang = course_lang(course_lang_code)
    definition: dict = {
        "type": LEGACY_COURSE_TYPE if is_legacy(release) else COURSE_TYPE,
        "name": {lang: course_fullname or "A Moodle course"},
    }
    extensions = {}
    if options.send_short_course_id:
        extensions[SHORT_ID_EXTENSION] = course_shortname
    if options.send_idnumber:
        extensions[EXTERNAL_ID_EXTENSION] = course_idnumber
    if extensions:
        definition["extensions"] = extensions
    return _activity(release, f"{wwwroot}/course/view.php?id={course_id}", definition)


def module_activity(
    *,
    wwwroot: str,
    cmid: int,
    modname: str,
    name: str,
    intro: str = "",
    module_idnumber: str | None = "",
    course_lang_code: str = "",
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """src/transformer/utils/get_activity/course_module.php: a course module as an Activity.

    Its id is the module's view URL, wwwroot/mod/<modname>/view.php?id=<cmid> (the course
    module id, not the instance id); its name the instance's name in the course language.
    Not covered: mod_choice, whose definition is a cmi.interaction with its choices.
    """
    lang = course_lang(course_lang_code)
    if is_legacy(release):
        definition: dict = {"type": LEGACY_MODULE_TYPE, "name": {lang: name}}
    else:
        definition = {"type": MODULE_TYPES.get(modname, DEFAULT_MODULE_TYPE), "name": {lang: name}}
        if modname in ("survey", "wiki"):  # these add the intro, HTML stripped
            definition["description"] = {lang: intro}
    if options.send_idnumber:
        definition["extensions"] = {EXTERNAL_ID_EXTENSION: module_idnumber}
    return _activity(release, f"{wwwroot}/mod/{modname}/view.php?id={cmid}", definition)


def section_activity(
    *,
    wwwroot: str,
    section_id: int,
    section_number: int,
    course_fullname: str,
    course_lang_code: str = "",
) -> dict:
    """src/transformer/utils/get_activity/course_section.php (v4.8.0 on): the id is
    course_sections.id, the name "<course fullname> Section <course_sections.section>"."""
    return {
        "objectType": "Activity",
        "id": f"{wwwroot}/course/section.php?id={section_id}",
        "definition": {
            "type": SECTION_TYPE,
            "name": {course_lang(course_lang_code): f"{course_fullname} Section {section_number}"},
        },
    }


def site_activity(*, wwwroot: str, release: str = V5, options: Options = DEFAULTS) -> dict:
    """src/transformer/utils/get_activity/site.php: the site (course 1), id = wwwroot."""
    fallback = "A Moodle site" if is_legacy(release) else "Moodle LMS"
    definition = {
        "type": SITE_TYPE,
        "name": {course_lang(options.site_lang): options.site_fullname or fallback},
    }
    return _activity(release, wwwroot, definition)


def _source_activity() -> dict:
    # src/transformer/utils/get_activity/source.php (v4.0.0-v4.7.0 only; Totara: other values).
    return {
        "id": "http://moodle.org",
        "definition": {"type": SOURCE_TYPE, "name": {"en": "Moodle"}},
    }


def _info_extension(event_name: str, event_function: str, release: str, options: Options):
    # src/transformer/utils/extensions/info.php
    return {
        INFO_EXTENSION: {
            "http://moodle.org": options.moodle_release,
            PLUGIN_URL: reported_plugin_version(release, options),
            "event_name": event_name,
            "event_function": event_function,
        }
    }


def _statement(
    *,
    agent: dict,
    verb_id: str,
    verb_word: str,
    obj: dict,
    lang: str,
    event_name: str,
    event_function: str,
    parent: list[dict] | None,
    legacy_grouping: list[dict],
    time: int | datetime,
    release: str,
    options: Options,
    wwwroot: str,
    result: dict | None = None,
) -> dict:
    """Assemble a statement the way the two generations of transformers do."""
    extensions = _info_extension(event_name, event_function, release, options)
    if is_legacy(release):
        # v4.0.0-v4.7.0: verb display in the course language, lower case; timestamp and
        # platform (source_name: "Moodle") written by the transformer; no registration;
        # site in "grouping" and the source in "category"; no result for completions.
        return {
            "actor": agent,
            "verb": {"id": verb_id, "display": {lang: verb_word.lower()}},
            "object": obj,
            "timestamp": timestamp(time, release, options),
            "context": {
                "platform": "Moodle",
                "language": lang,
                "extensions": extensions,
                "contextActivities": {
                    "grouping": legacy_grouping,
                    "category": [_source_activity()],
                },
            },
        }
    # v4.8.0 on: apply_statement_defaults.php's defaults first (context.platform,
    # context.registration, timestamp), the transformer's statement deep-merged over them.
    context_activities: dict = {}
    if parent is not None:
        context_activities["parent"] = parent
    context_activities["category"] = [
        site_activity(wwwroot=wwwroot, release=release, options=options)
    ]
    statement = {
        "context": {
            "platform": options.context_platform,
            "registration": registration(options.session_key),
            "language": lang,
            "extensions": extensions,
            "contextActivities": context_activities,
        },
        "timestamp": timestamp(time, release, options),
        "actor": agent,
        "verb": {"id": verb_id, "display": {"en": verb_word}},
        "object": obj,
    }
    if result:
        statement["result"] = result
    return statement


# --- the statements


def course_completed_statement(
    *,
    wwwroot: str,
    user_id: int,
    course_id: int,
    course_fullname: str,
    time: int | datetime,
    fullname: str = "Test Learner",
    username: str | None = None,
    account_homepage: str | None = None,
    email: str | None = None,
    course_shortname: str = "",
    course_idnumber: str | None = "",
    course_lang_code: str = "",
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """\\core\\event\\course_completed -> one statement "completed" the course.

    src/transformer/events/core/course_completed.php; fixture
    tests/core/course_completed/completing_existing_course/statements.json (master, v5.0.1,
    v4.9.0, v4.8.0: cmi5 course type, objectType, registration, ".000Z" timestamp; v4.7.0:
    lms/course type, grouping + source category, "completed" display). The actor is the
    event's relateduserid (the learner), the course the event's courseid; `time` is the
    event's timecreated, not course_completions.timecompleted. No result, no id.
    """
    lang = course_lang(course_lang_code)
    course = course_activity(
        wwwroot=wwwroot,
        course_id=course_id,
        course_fullname=course_fullname,
        course_shortname=course_shortname,
        course_idnumber=course_idnumber,
        course_lang_code=course_lang_code,
        release=release,
        options=options,
    )
    agent = actor(
        wwwroot=wwwroot,
        user_id=user_id,
        fullname=fullname,
        username=username,
        account_homepage=account_homepage,
        email=email,
        release=release,
        options=options,
    )
    return _statement(
        agent=agent,
        verb_id=COMPLETED,
        verb_word="Completed",
        obj=course,
        lang=lang,
        event_name="\\core\\event\\course_completed",
        event_function="\\src\\transformer\\events\\core\\course_completed",
        parent=None,
        legacy_grouping=[site_activity(wwwroot=wwwroot, release=release, options=options)],
        time=time,
        release=release,
        options=options,
        wwwroot=wwwroot,
    )


def module_completion_result(state: int | None, release: str = V5) -> dict | None:
    """The result of a module completion, from other.completionstate (v4.8.0 on).

    Moodle's states (lib/completionlib.php): 0 incomplete, 1 complete, 2 complete pass,
    3 complete fail, 4 complete fail on a hidden grade item. The plugin: falsy -> no result
    (verb uncompleted); else completion true, and for a state > 1 success = (state == 2), so
    3 and 4 both give success false. Before v4.8.0: never a result.
    """
    if is_legacy(release) or not state:
        return None
    result: dict = {"completion": True}
    if state > 1:
        result["success"] = state == 2
    return result


def module_completion_statement(
    *,
    wwwroot: str,
    user_id: int,
    course_id: int,
    course_fullname: str,
    cmid: int,
    modname: str,
    name: str,
    state: int,
    time: int | datetime,
    section_id: int = 1,
    section_number: int = 0,
    fullname: str = "Test Learner",
    username: str | None = None,
    account_homepage: str | None = None,
    email: str | None = None,
    course_shortname: str = "",
    course_idnumber: str | None = "",
    module_idnumber: str | None = "",
    intro: str = "",
    course_lang_code: str = "",
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """\\core\\event\\course_module_completion_updated -> one statement about the module.

    src/transformer/events/core/course_module_completion_updated.php; fixtures
    tests/core/course_module_completion_update/completing_existing_module/statements.json
    (state 2) and .../uncompleting_existing_module/statements.json (state 0), master and
    v4.8.0-v5.0.1. The object is the module (id wwwroot/mod/<modname>/view.php?id=<cmid>,
    type by modname); the course is not the object but context.contextActivities.parent,
    after the module's section: [section, course]. State 0 -> verb
    https://xapi.edlm/profiles/edlm-lms/concepts/verbs/uncompleted, no result; see
    `module_completion_result` for the others. Before v4.8.0 (fixture of v4.7.0): verb
    "completed" whatever the state (an un-completion looks like a completion), no result,
    object type lms/module, and the course in contextActivities.grouping after the site.
    """
    lang = course_lang(course_lang_code)
    legacy = is_legacy(release)
    module = module_activity(
        wwwroot=wwwroot,
        cmid=cmid,
        modname=modname,
        name=name,
        intro=intro,
        module_idnumber=module_idnumber,
        course_lang_code=course_lang_code,
        release=release,
        options=options,
    )
    course = course_activity(
        wwwroot=wwwroot,
        course_id=course_id,
        course_fullname=course_fullname,
        course_shortname=course_shortname,
        course_idnumber=course_idnumber,
        course_lang_code=course_lang_code,
        release=release,
        options=options,
    )
    section = section_activity(
        wwwroot=wwwroot,
        section_id=section_id,
        section_number=section_number,
        course_fullname=course_fullname,
        course_lang_code=course_lang_code,
    )
    agent = actor(
        wwwroot=wwwroot,
        user_id=user_id,
        fullname=fullname,
        username=username,
        account_homepage=account_homepage,
        email=email,
        release=release,
        options=options,
    )
    uncompleted = not legacy and not state
    return _statement(
        agent=agent,
        verb_id=UNCOMPLETED if uncompleted else COMPLETED,
        verb_word="Uncompleted" if uncompleted else "Completed",
        obj=module,
        lang=lang,
        event_name="\\core\\event\\course_module_completion_updated",
        event_function="\\src\\transformer\\events\\core\\course_module_completion_updated",
        parent=[section, course],
        legacy_grouping=[site_activity(wwwroot=wwwroot, release=release, options=options), course],
        time=time,
        release=release,
        options=options,
        wwwroot=wwwroot,
        result=module_completion_result(state, release),
    )


def viewed_statement(
    *,
    wwwroot: str,
    user_id: int,
    course_id: int,
    course_fullname: str,
    time: int | datetime,
    cmid: int | None = None,
    modname: str = "page",
    name: str = "",
    section_id: int = 1,
    section_number: int = 0,
    fullname: str = "Test Learner",
    username: str | None = None,
    account_homepage: str | None = None,
    email: str | None = None,
    course_shortname: str = "",
    course_idnumber: str | None = "",
    module_idnumber: str | None = "",
    intro: str = "",
    course_lang_code: str = "",
    release: str = V5,
    options: Options = DEFAULTS,
) -> dict:
    """A "viewed" statement, which lrx receives and does not use.

    Without `cmid`: \\core\\event\\course_viewed, src/transformer/events/core/course_viewed.php,
    fixture tests/core/course_viewed/viewing_existing_course/statements.json (object: the
    course). With `cmid`: \\mod_<modname>\\event\\course_module_viewed,
    src/transformer/events/all/course_module_viewed.php, fixture
    tests/mod_page/course_module_viewed/existing_module/statements.json (object: the module,
    parent [section, course]). Verb http://id.tincanapi.com/verb/viewed. Master, v4.8.0-v5.0.1;
    legacy shape before v4.8.0 (v4.7.0 fixtures of the same paths), where most modules had
    their own transformer: see LEGACY_VIEWED_TYPES. The actor is the event's userid.
    """
    lang = course_lang(course_lang_code)
    course = course_activity(
        wwwroot=wwwroot,
        course_id=course_id,
        course_fullname=course_fullname,
        course_shortname=course_shortname,
        course_idnumber=course_idnumber,
        course_lang_code=course_lang_code,
        release=release,
        options=options,
    )
    site = site_activity(wwwroot=wwwroot, release=release, options=options)
    agent = actor(
        wwwroot=wwwroot,
        user_id=user_id,
        fullname=fullname,
        username=username,
        account_homepage=account_homepage,
        email=email,
        release=release,
        options=options,
    )
    if cmid is None:
        obj, parent, grouping = course, None, [site]
        event_name = "\\core\\event\\course_viewed"
        event_function = "\\src\\transformer\\events\\core\\course_viewed"
    else:
        obj = module_activity(
            wwwroot=wwwroot,
            cmid=cmid,
            modname=modname,
            name=name,
            intro=intro,
            module_idnumber=module_idnumber,
            course_lang_code=course_lang_code,
            release=release,
            options=options,
        )
        section = section_activity(
            wwwroot=wwwroot,
            section_id=section_id,
            section_number=section_number,
            course_fullname=course_fullname,
            course_lang_code=course_lang_code,
        )
        parent, grouping = [section, course], [site, course]
        event_name = f"\\mod_{modname}\\event\\course_module_viewed"
        event_function = "\\src\\transformer\\events\\all\\course_module_viewed"
        if is_legacy(release) and modname in LEGACY_VIEWED_NOT_COVERED:
            raise NotImplementedError(f"the legacy mod_{modname} viewed statement")
        if is_legacy(release) and modname in LEGACY_VIEWED_TYPES:
            obj["definition"]["type"] = LEGACY_VIEWED_TYPES[modname]
            event_function = f"\\src\\transformer\\events\\mod_{modname}\\course_module_viewed"
    return _statement(
        agent=agent,
        verb_id=VIEWED,
        verb_word="Viewed",
        obj=obj,
        lang=lang,
        event_name=event_name,
        event_function=event_function,
        parent=parent,
        legacy_grouping=grouping,
        time=time,
        release=release,
        options=options,
        wwwroot=wwwroot,
    )


def voiding_statement(
    target_id: str,
    *,
    agent: dict | None = None,
    statement_id: str | None = None,
    time: int | datetime | None = None,
) -> dict:
    """An xAPI 1.0.3 voiding statement (Part Two, "Voided"): verb voided, object a StatementRef.

    The plugin NEVER sends one: no transformer in src/ uses the voided verb or a
    StatementRef, and it cannot void anything since it sends no statement ids. A Moodle
    "un-completion" arrives as an ordinary statement (verb uncompleted, or "completed"
    before v4.8.0). This builder is for testing lrx against other xAPI clients.
    """
    statement: dict = {}
    if statement_id is not None:
        statement["id"] = statement_id
    statement["actor"] = agent or {
        "objectType": "Agent",
        "account": {"homePage": "https://lrx.example", "name": "admin"},
    }
    statement["verb"] = {"id": VOIDED, "display": {"en-US": "voided"}}
    statement["object"] = {"objectType": "StatementRef", "id": target_id}
    if time is not None:
        statement["timestamp"] = timestamp(time)
    return statement


# --- the request


def statements_url(endpoint: str) -> str:
    """src/loader/utils/correct_endpoint.php, then . '/statements' (moodle_curl_lrs.php)."""
    if endpoint.endswith("/statements"):
        base = endpoint.removesuffix("/statements")  # only this one; a trailing "/" stays
    else:
        base = endpoint.rstrip("/")
    return base + "/statements"


def plugin_request(
    statements: list[dict], key: str, secret: str, release: str = V5
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path suffix, headers, body) of the plugin's POST (moodle_curl_lrs.php).

    The path suffix is appended to the configured endpoint as `statements_url` does. The
    headers are those the plugin sets; libcurl adds Host, Accept and Content-Length.
    `statements` is the flat list of every statement of the batch ([] is sent too).
    """
    credentials = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
    headers = {
        "Authorization": "Basic " + credentials,
        "X-Experience-API-Version": xapi_version_header(release),
        "Content-Type": "application/json",
    }
    return "POST", "/statements", headers, php_json(list(statements)).encode("utf-8")
