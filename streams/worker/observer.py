"""What the pipeline reports as it works: the hooks a process turns into metrics.

streams/ imports no metrics library: `lrx worker` (deploy/cli/worker.py) passes a
subclass that counts into Prometheus, tests pass one that remembers, and
everything else gets this silent base.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PipelineObserver", "Decision"]


class Decision(StrEnum):
    """The outcomes `PipelineObserver.decided` reports."""

    ROUTED = "routed"
    INELIGIBLE = "ineligible"
    HELD = "held"
    DEAD_LETTERED = "dead_lettered"


class PipelineObserver:
    """Hooks called by the pipeline; each does nothing here."""

    def decided(self, decision: Decision, reason: str = "") -> None:
        """A record (or an input event, when dead-lettered) got a decision, with its reason."""

    def pending(self, count: int) -> None:
        """How many records this worker now holds as pending."""

    def batch_settled(self, events: int, seconds: float) -> None:
        """A batch of `events` input events was decided and acknowledged in `seconds`."""

    def unreadable(self, topic: str) -> None:
        """A message of `topic` the pipeline reads back could not be decoded."""

    def crashed(self, error: BaseException) -> None:
        """The worker is stopping because of `error`, to restart from its committed offsets."""
