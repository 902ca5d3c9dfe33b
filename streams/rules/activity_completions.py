"""A user's activity completions: cmid -> completion times (epoch ms), as rule 6 reads them.

The worker keeps this in its activity-completions table and `lrx trace` works it
out again from the user's learning records; both build it here, so a required
activity counts the same way in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streams.rules.eligibility import completed_activity

__all__ = ["Completions", "completions_of", "with_completion"]

Completions = dict[str, list[int]]


def with_completion(
    completions: Mapping[str, Sequence[int]] | None, record: Mapping[str, Any]
) -> Completions | None:
    """The completions with this record's activity added, or None when nothing changes.

    Nothing changes for a record that completes no activity, or one already counted
    (a republished record): times stay unique and sorted.
    """
    cmid = completed_activity(record)
    if cmid is None:
        return None
    completed_ms = int(record["completed_at"].timestamp() * 1000)
    if completed_ms in (completions or {}).get(cmid, ()):
        return None
    updated = {k: list(v) for k, v in (completions or {}).items()}
    updated.setdefault(cmid, []).append(completed_ms)
    updated[cmid].sort()
    return updated


def completions_of(records: Iterable[Mapping[str, Any]]) -> Completions:
    """The completions a user's learning records add up to."""
    completions: Completions = {}
    for record in records:
        completions = with_completion(completions, record) or completions
    return completions
