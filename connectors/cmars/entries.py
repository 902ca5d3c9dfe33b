"""Entries made from outbox messages: each with its CMaRS request, or the problem to dead-letter."""

from __future__ import annotations

import logging

from aiokafka.structs import ConsumerRecord

from connectors.cmars.batch import Entry
from connectors.cmars.contract import ROUTED_FIELDS, MalformedRecord, record_json, request_record
from schemas.codec import Codec, CodecError
from schemas.vocabulary import DeadLetterReason

__all__ = ["EntryMaker"]

log = logging.getLogger(__name__)


class EntryMaker:
    """Reads the outbox of one recipient; `entry(message)` makes each message an Entry."""

    def __init__(self, codec: Codec, recipient: str) -> None:
        self.recipient = recipient
        self._read_routed = codec.projection("RoutedRecord", ROUTED_FIELDS)

    def entry(self, message: ConsumerRecord) -> Entry:
        """The message as an entry ready to send, or with the problem it is dead-lettered for.

        Nothing one message holds may stop the sink: it would fail again on the same
        message after every restart, and the records behind it would never be sent.
        """
        entry = Entry(
            message.topic, message.partition, message.offset, message.key, message.value or b""
        )
        try:
            self._prepare(entry)
        except CodecError as error:
            log.warning("%s is not a RoutedRecord (%s): dead-lettering it", entry.where(), error)
            entry.problem = (
                DeadLetterReason.UNDECODABLE,
                str(error),
                type(error).__name__,
            )  # "kind: what"
        except MalformedRecord as error:
            log.warning("%s record %s: %s", entry.where(), entry.record_id, error)
            entry.problem = (DeadLetterReason.MALFORMED, str(error), type(error).__name__)
        except Exception as error:
            log.exception(
                "%s record %s cannot be made a CMaRS request: dead-lettering it as unprocessable",
                entry.where(), entry.record_id,
            )  # fmt: skip
            kind = type(error).__name__
            entry.problem = ("unprocessable", f"{kind}: {error}", kind)
        return entry

    def _prepare(self, entry: Entry) -> None:
        routed = self._read_routed(entry.value)
        entry.record_id = routed["record_id"]
        entry.routed = routed
        if routed["recipient"] != self.recipient:
            raise MalformedRecord(
                "recipient", f"is {routed['recipient']!r}, but this outbox is {self.recipient}"
            )
        entry.request = request_record(routed)
        entry.request_json = record_json(entry.request)
        entry.size = len(entry.request_json) + 1
