"""The users a site already has, as the LMS published them to lms.user-profiles.

The CSV import needs two lookups the topic's keys (site/user id) do not give:
username -> user, because Moodle's upload file carries no internal user id, and
canonical OCI ID -> users, to find an OCI ID that another user already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from schemas.codec import Codec, CodecError
from schemas.topics import USER_PROFILES
from streams.kafka.connection import KafkaConnection
from streams.kafka.live_view import LiveView
from streams.kafka.topic_reader import read_compacted_topic
from streams.rules.colleges import CollegeRegistry
from streams.rules.oci_id import OciIdError, parse_oci_id

__all__ = ["ProfileDirectory", "SiteUsers", "read_profile_directory", "username_key"]

log = logging.getLogger(__name__)

Profile = Mapping[str, Any]


def username_key(username: str) -> str:
    """Moodle stores usernames in lower case (its upload lowers them too), so match that way."""
    return username.strip().casefold()


class ProfileDirectory:
    """Latest profiles, looked up by site and username or by site and canonical OCI ID."""

    def __init__(self, profiles: Iterable[Profile], colleges: CollegeRegistry) -> None:
        self.colleges = colleges
        self._by_username: dict[tuple[str, str], list[Profile]] = {}
        self._oci_index: dict[str, dict[str, list[Profile]]] = {}
        self.count = 0
        for profile in profiles:
            self.count += 1
            key = (profile["site"], username_key(profile["username"]))
            self._by_username.setdefault(key, []).append(profile)

    def users_named(self, site: str, username: str) -> list[Profile]:
        """Every profile of the site with this username (normally one), deleted ones included."""
        return self._by_username.get((site, username_key(username)), [])

    def holders_of(self, site: str, canonical: str) -> list[Profile]:
        """Users of the site, not deleted, whose OCI ID field normalises to `canonical`."""
        return self._site_oci_index(site).get(canonical, [])

    def _site_oci_index(self, site: str) -> dict[str, list[Profile]]:
        # Built on first use: parsing every known OCI ID is the costly part, and an
        # import concerns one site.
        index = self._oci_index.get(site)
        if index is None:
            index = {}
            for (profile_site, _), profiles in self._by_username.items():
                if profile_site != site:
                    continue
                for profile in profiles:
                    canonical = self._canonical_of(profile)
                    if canonical is not None and not profile["deleted"]:
                        index.setdefault(canonical, []).append(profile)
            self._oci_index[site] = index
        return index

    def _canonical_of(self, profile: Profile) -> str | None:
        # A stored value that does not parse holds no identity; the pipeline reports it.
        if not profile.get("oci_id"):
            return None
        try:
            return parse_oci_id(profile["oci_id"], self.colleges, require_enabled=False).canonical
        except OciIdError:
            return None


async def read_profile_directory(
    kafka: KafkaConnection,
    timeout: float,
    codec: Codec,
    colleges: CollegeRegistry,
    site: str | None = None,
) -> ProfileDirectory:
    """Read lms.user-profiles whole (only `site`'s users when given) into a directory.

    A value that does not decode is skipped with a warning naming its partition
    and offset: it is the producer's error, and it names no user we could match.
    """
    prefix = f"{site}/".encode() if site is not None else b""
    latest = await read_compacted_topic(
        kafka,
        USER_PROFILES,
        timeout=timeout,
        key_prefix=prefix,
    )
    profiles: list[dict[str, Any]] = []
    for key, found in latest.items():
        try:
            profiles.append(codec.decode("UserProfile", found.value))
        except CodecError as error:
            log.warning(
                "%s[%d]@%d (key %r) is not a UserProfile, skipped: %s",
                USER_PROFILES,
                found.partition,
                found.offset,
                key,
                error,
            )
    return ProfileDirectory(profiles, colleges)


class SiteUsers:
    """Each site's users by username, from lms.user-profiles followed live (the gateway's).

    logstore_xapi's "send username" names the learner by username; records need
    the Moodle user id. Deleted users are left out: a username may be reused.
    """

    def __init__(self, kafka: KafkaConnection, timeout: float, codec: Codec) -> None:
        def entry(message: Any) -> tuple[bytes, tuple[str, str, str] | None] | None:
            if message.value is None:
                return message.key, None
            try:
                profile = codec.decode("UserProfile", message.value)
            except CodecError:
                return None  # the worker reports it; nothing to look up here
            if profile["deleted"]:
                return message.key, None
            return message.key, (profile["site"], username_key(profile["username"]),
                                 profile["user_id"])  # fmt: skip

        self.view: LiveView[tuple[str, str, str]] = LiveView(kafka, USER_PROFILES, entry, timeout)
        self._by_site: dict[str, dict[str, str]] = {}
        self._built_at = -1

    async def user_ids(self, site: str) -> Mapping[str, str]:
        """username_key -> user id of the site's users; KafkaUnavailable if not read in time."""
        values = await self.view.current()
        if self._built_at != self.view.version:
            by_site: dict[str, dict[str, str]] = {}
            for user_site, username, user_id in values.values():
                by_site.setdefault(user_site, {})[username] = user_id
            self._by_site, self._built_at = by_site, self.view.version
        return self._by_site.get(site, {})

    async def close(self) -> None:
        await self.view.close()
