"""The input formats lrx accepts from an LMS, and the mapping of a whole batch.

The gateway and `lrx publish` share this, so a completion posted over HTTP and
the same completion loaded from a file become the same LearningRecord.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.lms.learning_record_json import learning_record_from_json
from connectors.lms.moodle_events import learning_record_from_event
from connectors.lms.problems import FieldReader, InvalidInput, Problem
from connectors.lms.xapi_statements import learning_record_from_statement

__all__ = ["FORMATS", "MappedBatch", "map_batch", "map_item"]


MAX_BATCH_ITEMS = 5000


@dataclass(frozen=True)
class LmsContext:
    """What a mapping needs besides the item: the site it came from and known site URLs."""

    site: str
    site_urls: Mapping[str, str] = field(default_factory=dict)
    # With logstore_xapi's "send username": the homePage of such actors, and the site's
    # users by username_key (connectors/lms/profile_directory.py).
    account_homepage: str | None = None
    user_ids: Mapping[str, str] = field(default_factory=dict)


FORMATS: dict[str, Callable[[FieldReader, LmsContext, datetime], dict[str, Any] | None]] = {
    "lrx": lambda item, ctx, now: learning_record_from_json(item, ctx.site, now),
    "moodle": lambda item, ctx, now: learning_record_from_event(item, ctx.site, now),
    "xapi": lambda item, ctx, now: learning_record_from_statement(
        item, ctx.site, ctx.site_urls, now, ctx.account_homepage, ctx.user_ids
    ),
}


@dataclass
class MappedBatch:
    records: list[dict[str, Any]]
    ignored: int  # events or statements that carry no completion


def map_item(
    fmt: str, item: object, context: LmsContext, now: datetime, path: str = ""
) -> dict[str, Any] | None:
    """Map one item; raises InvalidInput with every problem found in it."""
    reader = FieldReader(item, path)
    record = None if reader.problems else FORMATS[fmt](reader, context, now)
    reader.raise_problems()
    return record


def map_batch(fmt: str, body: object, context: LmsContext, now: datetime) -> MappedBatch:
    """Map one item or an array of them, all or nothing.

    Raises InvalidInput listing every problem of every item, with paths like `[3].relateduserid`.
    """
    single = not isinstance(body, list)
    items = [body] if single else body
    if not items:
        raise InvalidInput([Problem("", "the batch is empty")])
    if len(items) > MAX_BATCH_ITEMS:
        raise InvalidInput([Problem("", f"more than {MAX_BATCH_ITEMS} items in one batch")])
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    ignored = 0
    for index, item in enumerate(items):
        try:
            record = map_item(fmt, item, context, now, "" if single else f"[{index}]")
        except InvalidInput as error:
            problems += error.problems
            continue
        if record is None:
            ignored += 1
        else:
            records.append(record)
    if problems:
        raise InvalidInput(problems)
    return MappedBatch(records, ignored)
