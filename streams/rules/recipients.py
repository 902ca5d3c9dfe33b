"""Recipients: the canonical id behind whatever name an LMS admin picked.

A course's "Learning record exchange" page lists recipients by the name the
platform shows: `CMaRS` on most systems, `tahsn` on some (the guide says they are
the same). Resolution ignores case and surrounding spaces, maps aliases
(LRX_RECIPIENT_ALIASES, `alias=recipient` pairs) to their recipient, and refuses
names it does not know, listing the ones it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from schemas.errors import LrxError

__all__ = ["RecipientDirectory", "RecipientError", "UnknownRecipientError"]

# Recipient ids become topic names (lrx.outbox.<id>), so they use topic-safe characters.
_RECIPIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RecipientError(LrxError, ValueError):
    """The recipient configuration is inconsistent; the message names the entry."""


class UnknownRecipientError(RecipientError):
    """A name that is neither a recipient nor an alias; the message lists the known names."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown recipient {name!r}; known: {', '.join(self.known)}")


class RecipientDirectory:
    """The configured recipients and their aliases."""

    def __init__(self, recipients: Iterable[str], aliases: Mapping[str, str] | None = None) -> None:
        self.recipients: tuple[str, ...] = tuple(_check_id(r.strip().lower()) for r in recipients)
        if len(set(self.recipients)) != len(self.recipients):
            raise RecipientError(f"recipients {', '.join(self.recipients)} list one twice")
        self.aliases: dict[str, str] = {}
        for alias, target in (aliases or {}).items():
            alias_key, target_id = alias.strip().lower(), target.strip().lower()
            if target_id not in self.recipients:
                raise RecipientError(
                    f"alias {alias!r} points at {target!r}, which is not a recipient "
                    f"({', '.join(self.recipients)})"
                )
            if alias_key in self.recipients:
                raise RecipientError(f"alias {alias!r} is also a recipient id")
            self.aliases[alias_key] = target_id

    @classmethod
    def from_settings(
        cls, recipients: Iterable[str], alias_pairs: Iterable[str]
    ) -> RecipientDirectory:
        """From LRX_RECIPIENTS and LRX_RECIPIENT_ALIASES values (`alias=recipient` pairs)."""
        aliases: dict[str, str] = {}
        for pair in alias_pairs:
            alias, equals, target = pair.partition("=")
            if not equals or not alias.strip() or not target.strip():
                raise RecipientError(f"recipient alias {pair!r} is not alias=recipient")
            aliases[alias] = target
        return cls(recipients, aliases)

    def resolve(self, name: str) -> str:
        """The recipient id for a recipient id or alias, in any case."""
        key = name.strip().lower()
        if key in self.recipients:
            return key
        if key in self.aliases:
            return self.aliases[key]
        raise UnknownRecipientError(name, self.known_names())

    def resolve_all(self, names: Iterable[str]) -> tuple[str, ...]:
        """Each distinct recipient once, first mention first: ["CMaRS", "tahsn"] -> ("cmars",)."""
        return tuple(dict.fromkeys(self.resolve(name) for name in names))

    def known_names(self) -> list[str]:
        """Every accepted name: recipients, then `alias (= recipient)`."""
        return [*self.recipients, *(f"{a} (= {t})" for a, t in sorted(self.aliases.items()))]


def _check_id(recipient: str) -> str:
    if not _RECIPIENT_ID.match(recipient):
        raise RecipientError(
            f"recipient id {recipient!r} must be lower-case letters, digits, '_' or '-' "
            "(it becomes part of a topic name)"
        )
    return recipient
