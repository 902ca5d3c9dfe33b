"""The delivery ledger: a DeliveryReceipt in lrx.delivery-receipts per delivered record.

Keyed by recipient/record id, so the topic keeps one receipt per record and
recipient, and answers "did CMaRS get it, when, in which batch".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.cmars.batch import Entry
from connectors.cmars.contract import RecordResult
from schemas.topics import record_key

__all__ = ["receipt_message"]


def receipt_message(
    entry: Entry, result: RecordResult, batch_id: str, recipient: str, at: datetime
) -> tuple[bytes, dict[str, Any]]:
    assert entry.record_id is not None and entry.request is not None
    value = {
        "record_id": entry.record_id,
        "recipient": recipient,
        "batch_id": batch_id,
        "delivered_at": at,
        "outcome": str(result.status),
        "oci_id": entry.request["oci_id"],
        "message": result.message,
    }
    return record_key(recipient, entry.record_id), value
