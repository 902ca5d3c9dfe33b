"""The Kafka error family: what every lrx component raises when Kafka fails it.

The gateway answers these with 503 and the CLI with one line; they live apart
from the worker so that neither imports the stream processor to catch them.
"""

from __future__ import annotations

from schemas.errors import LrxError

__all__ = ["KafkaUnavailable", "TopicMissing", "KafkaStalled"]


class KafkaUnavailable(LrxError, RuntimeError):
    """Kafka did not answer in time: a write it did not acknowledge, or a read that failed.

    After a failed write nothing may be reported as stored.
    """


class TopicMissing(KafkaUnavailable):
    """The topic does not exist on the cluster: it is not ready for lrx (`lrx topics create`)."""


class KafkaStalled(KafkaUnavailable):
    """Reading made no progress for the reader's timeout."""
