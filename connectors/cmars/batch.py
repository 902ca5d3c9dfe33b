"""Entries on their way to CMaRS, and the batcher that cuts them into batches.

A batch is cut by count, by bytes, or when its oldest entry has lingered long
enough. Entries keep consumption order, so a partition's offsets in one batch
are contiguous and follow those of the batch before.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka.structs import TopicPartition

__all__ = ["Entry", "Batcher"]


@dataclass(eq=False)
class Entry:
    """One consumed outbox message and what became of it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    record_id: str | None = None
    routed: dict[str, Any] | None = None  # the RoutedRecord fields the sink reads (ROUTED_FIELDS)
    request: dict[str, Any] | None = None  # the contract record; None if it cannot be sent
    request_json: bytes = b""
    problem: tuple[str, str, str] | None = None  # (reason code, message, exception class)
    size: int = 0
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def attempted(self, at: datetime) -> None:
        self.attempts += 1
        self.first_attempt_at = self.first_attempt_at or at
        self.last_attempt_at = at


@dataclass
class Batcher:
    max_records: int
    max_bytes: int
    linger: float
    _entries: deque[Entry] = field(default_factory=deque)
    _bytes: int = 0
    _oldest: float | None = None

    def add(self, entry: Entry) -> None:
        if not self._entries:
            self._oldest = time.monotonic()
        self._entries.append(entry)
        self._bytes += entry.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.max_records or self._bytes >= self.max_bytes

    def linger_left(self) -> float | None:
        """Seconds until the pending entries must go, or None if there are none."""
        if self._oldest is None:
            return None
        return max(0.0, self._oldest + self.linger - time.monotonic())

    def cut(self, drain: bool = False) -> list[Entry]:
        """The next batch if one is due (full, lingered, or `drain`), else an empty list."""
        if not self._entries or not (drain or self.full or self.linger_left() == 0):
            return []
        batch: list[Entry] = []
        size = 0
        while self._entries and len(batch) < self.max_records:
            entry = self._entries[0]
            if batch and size + entry.size > self.max_bytes:
                break
            batch.append(self._entries.popleft())
            size += entry.size
        self._bytes -= size
        self._oldest = time.monotonic() if self._entries else None
        return batch

    def drop(self, partitions: set[TopicPartition]) -> int:
        """Forget the entries of partitions this sink no longer owns; Kafka redelivers them."""
        kept = deque(e for e in self._entries if e.tp not in partitions)
        dropped = len(self._entries) - len(kept)
        self._entries = kept
        self._bytes = sum(e.size for e in kept)
        if not kept:
            self._oldest = None
        return dropped
