"""Recipients: aliases resolve to one canonical id; unknown names list the known ones."""

from __future__ import annotations

import pytest

from deploy.settings import Settings
from streams.rules.recipients import RecipientDirectory, RecipientError, UnknownRecipientError


@pytest.fixture
def directory() -> RecipientDirectory:
    settings = Settings.from_env({})
    return RecipientDirectory.from_settings(settings.recipients, settings.recipient_aliases)


@pytest.mark.parametrize("name", ["cmars", "CMaRS", " CMARS ", "tahsn", "TAHSN"])
def test_cmars_and_its_alias_resolve_to_cmars(directory, name):
    assert directory.resolve(name) == "cmars"


def test_a_course_listing_both_names_gets_one_recipient(directory):
    assert directory.resolve_all(["CMaRS", "tahsn", "cmars"]) == ("cmars",)


def test_order_of_first_mention_is_kept():
    directory = RecipientDirectory(["cmars", "ohpe"], {"tahsn": "cmars"})
    assert directory.resolve_all(["OHPE", "tahsn"]) == ("ohpe", "cmars")


def test_an_unknown_recipient_lists_the_known_names(directory):
    with pytest.raises(UnknownRecipientError) as caught:
        directory.resolve("CMaRS2")
    assert caught.value.name == "CMaRS2"
    assert str(caught.value) == "unknown recipient 'CMaRS2'; known: cmars, tahsn (= cmars)"


@pytest.mark.parametrize(
    ("recipients", "pairs", "message"),
    [
        (["cmars"], ["tahsn"], "recipient alias 'tahsn' is not alias=recipient"),
        (["cmars"], ["tahsn="], "recipient alias 'tahsn=' is not alias=recipient"),
        (["cmars"], ["=cmars"], "recipient alias '=cmars' is not alias=recipient"),
        (
            ["cmars", "ohpe"], ["tahsn=other"],
            "alias 'tahsn' points at 'other', which is not a recipient (cmars, ohpe)",
        ),
        # The alias ends at the first '=': the rest is the recipient it names.
        (
            ["cmars", "ohpe"], ["tahsn=cmars=ohpe"],
            "alias 'tahsn' points at 'cmars=ohpe', which is not a recipient (cmars, ohpe)",
        ),
        (["cmars", "tahsn"], ["tahsn=cmars"], "alias 'tahsn' is also a recipient id"),
        (["cmars", "ohpe", "CMaRS"], [], "recipients cmars, ohpe, cmars list one twice"),
        (
            ["c mars"], [],
            "recipient id 'c mars' must be lower-case letters, digits, '_' or '-' "
            "(it becomes part of a topic name)",
        ),
        (
            ["lrx.outbox"], [],
            "recipient id 'lrx.outbox' must be lower-case letters, digits, '_' or '-' "
            "(it becomes part of a topic name)",
        ),
    ],
)  # fmt: skip
def test_inconsistent_configuration_is_refused_naming_the_entry(recipients, pairs, message):
    with pytest.raises(RecipientError) as caught:
        RecipientDirectory.from_settings(recipients, pairs)
    assert str(caught.value) == message


def test_configured_ids_are_lower_cased():
    directory = RecipientDirectory.from_settings(["CMaRS"], ["TAHSN=CMARS"])
    assert directory.recipients == ("cmars",)
    assert directory.resolve("Tahsn") == "cmars"
